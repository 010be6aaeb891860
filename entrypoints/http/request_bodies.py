"""The API's JSON request bodies, each declared once: `inputs.py` structures a body into its
class (unknown keys refused, ranges checked by the fields' validators), and the OpenAPI
document's schema is generated from the same class (`json_schema.py`).

A docstring's first paragraph and the fields' `about(...)` are what the document says; the
domain checks the rest (texts against InputLimits, max_tokens against the model) and the
field descriptions say so.
"""

from __future__ import annotations

from uuid import UUID

import attrs

from conversation_service.adapters.llm.anthropic_messages import DEFAULT_MAX_TOKENS
from conversation_service.adapters.llm.registry_entry import (
    DEFAULT_CONTEXT_WINDOW,
    DEFAULT_MAX_OUTPUT_TOKENS,
    PROVIDERS,
)
from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream import Timeouts
from conversation_service.domain.feedback import Rating
from conversation_service.domain.model import ContextScope
from conversation_service.domain.replies import Multitask
from conversation_service.entrypoints.http.field_rules import OneOf, Range, about, not_blank

MAX_API_KEY_CHARS = 4096  # adapters/org_models.py: the same bound, checked there too


@attrs.frozen(kw_only=True)
class CreateConversation:
    """A new conversation."""

    title: str | None = attrs.field(
        default=None,
        metadata=about(
            "The conversation's title (absent or null: it gets one after its first reply)",
            text_limit="max_title_chars",
        ),
    )
    is_archived: bool = False


@attrs.frozen(kw_only=True)
class SessionParams:
    """Sampling settings; absent or null leaves one to the model."""

    temperature: float | None = attrs.field(default=None, validator=Range(minimum=0, maximum=2))
    max_tokens: int | None = attrs.field(
        default=None,
        validator=Range(minimum=1),
        metadata=about(
            "The reply's most tokens: at most the model's `max_output_tokens` (GET /api/models), "
            "else 400 naming `params.max_tokens`. Kept free in the model's context window."
        ),
    )
    top_p: float | None = attrs.field(default=None, validator=Range(above=0, maximum=1))


@attrs.frozen(kw_only=True)
class CreateSession:
    """A new chat session in a conversation, bound to one model."""

    conversation_id: UUID
    model_id: UUID = attrs.field(metadata=about("One of GET /api/models."))
    system_prompt: str | None = attrs.field(
        default=None,
        metadata=about("Instructions for the model", text_limit="max_system_prompt_chars"),
    )
    params: SessionParams | None = None
    context: ContextScope = attrs.field(
        default=ContextScope.SESSION,
        metadata=about(
            "What the model is shown: this session's messages, or every earlier message of "
            "the conversation."
        ),
    )


_MULTITASK = (
    "What to do while the session is still replying: `enqueue` waits its turn (429 when the "
    "session's queue is full), `reject` answers 409, `interrupt` cancels the running reply."
)


@attrs.frozen(kw_only=True)
class StreamChat:
    """A user message for a chat session, whose reply streams back. The message must also
    fit the model's context window, with the session's system prompt and the room kept for
    the reply (the session's `max_tokens`, else the model's `max_output_tokens`): 400 naming
    `message` otherwise.
    """

    chat_session_id: UUID
    message: str = attrs.field(metadata=about("The user's message", text_limit="max_message_chars"))
    multitask: Multitask = attrs.field(default=Multitask.ENQUEUE, metadata=about(_MULTITASK))


@attrs.frozen(kw_only=True)
class RegenerateReply:
    """Another reply to the user message a reply answered, streamed back as stream_chat
    streams one. The first reply stays (a sibling: `messages?leaf_id=` shows it); the new one
    becomes the end of the session's current branch. No new user message is stored.
    """

    chat_session_id: UUID
    message_id: UUID | None = attrs.field(
        default=None,
        metadata=about(
            "The reply to regenerate: an assistant message on the session's current branch "
            "(409 `not_on_current_branch` otherwise), finished. Absent or null: the last reply "
            "of the current branch (its `head_id`), the one running included once it has ended."
        ),
    )
    multitask: Multitask = attrs.field(default=Multitask.ENQUEUE, metadata=about(_MULTITASK))


@attrs.frozen(kw_only=True)
class EditMessage:
    """A new version of a user message, answered anew and streamed back as stream_chat
    streams a reply. The first version and what followed it stay (a sibling branch); the new
    one becomes the session's current branch. `content` must fit the model's context window
    as stream_chat's `message` must (400 naming `content`).
    """

    chat_session_id: UUID
    message_id: UUID = attrs.field(
        metadata=about("The user message to edit: on the session's current branch.")
    )
    content: str = attrs.field(
        metadata=about("The new text of the message", text_limit="max_message_chars")
    )
    multitask: Multitask = attrs.field(default=Multitask.ENQUEUE, metadata=about(_MULTITASK))


@attrs.frozen(kw_only=True)
class SelectBranch:
    """Choose the session's current branch: the one through a message, down its newest
    children. The session's next message follows it, and `messages` shows it."""

    chat_session_id: UUID
    message_id: UUID = attrs.field(metadata=about("Any message of the session."))


@attrs.frozen(kw_only=True)
class SessionRef:
    """A reply of a chat session to stop."""

    chat_session_id: UUID
    message_id: UUID | None = attrs.field(
        default=None,
        metadata=about("Cancel this reply only (running or queued); omit for any."),
    )


@attrs.frozen(kw_only=True)
class CompleteSession:
    """A chat session to close for good."""

    chat_session_id: UUID


_TIMEOUTS, _RETRIES = Timeouts(), Retries()


def _seconds(default: float, what: str) -> float:
    return attrs.field(
        default=default, validator=Range(above=0), metadata=about(f"Seconds: {what}")
    )


def _tokens(default: int, what: str) -> int:
    return attrs.field(default=default, validator=Range(minimum=1), metadata=about(what))


@attrs.frozen(kw_only=True)
class RegisterModel:
    """A model offered to this organisation only (admin tokens only).

    The server calls it with the key given here, never with one of its own. The entry is
    checked like a registry file's (`adapters/llm/registry_entry.py`); the body is stored
    as sent, so a default applies while it stays the default.
    """

    name: str = attrs.field(
        metadata=about(
            "What clients see: not `echo`, and not the name of another model this "
            "organisation sees (409).",
            pattern=not_blank(),
            **{"not": {"const": "echo"}},
        )
    )
    provider: str = attrs.field(
        validator=OneOf(tuple(sorted(PROVIDERS))),
        metadata=about("`anthropic`: the Messages API; any other: OpenAI's Chat Completions."),
    )
    # Its default depends on the provider, which no schema default can say; the factory
    # fills only the checked copy (the body goes on as sent).
    base_url: str = attrs.field(
        factory=str,
        metadata=about(
            "The API's root: http or https, no user or password in it. Its host must be "
            "public (a name must resolve to public addresses only; loopback, private, "
            "link-local and other internal addresses are 400) unless the operator allows "
            "private ones (CONVERSATION_SERVICE_ALLOW_PRIVATE_MODEL_URLS). Required but for "
            "`anthropic`, which defaults to its public API.",
            format="uri",
            pattern="^https?://[^/?#@]+([/?#].*)?$",
        ),
    )
    upstream_model: str = attrs.field(
        metadata=about("The provider's name for the model.", pattern=not_blank())
    )
    api_key: str | None = attrs.field(
        default=None,
        metadata=about(
            "Sent to the provider; stored encrypted, never shown again. Absent or null: no key.",
            minLength=1,
            maxLength=MAX_API_KEY_CHARS,
        ),
    )
    connect_timeout: float = _seconds(_TIMEOUTS.connect, "to connect to the provider.")
    first_token_timeout: float = _seconds(
        _TIMEOUTS.first_token, "from sending a request to the reply's first event."
    )
    idle_timeout: float = _seconds(_TIMEOUTS.idle, "between two events of a reply.")
    total_timeout: float = _seconds(_TIMEOUTS.total, "the whole reply, retries included.")
    context_window: int = _tokens(
        DEFAULT_CONTEXT_WINDOW, "Tokens the model reads, prompt and reply together."
    )
    max_output_tokens: int = _tokens(
        DEFAULT_MAX_OUTPUT_TOKENS, "Tokens of one reply at most; at most `context_window`."
    )
    # Like base_url: the default depends on max_output_tokens, and the factory fills only
    # the checked copy.
    default_max_tokens: int = attrs.field(
        factory=lambda: DEFAULT_MAX_TOKENS,
        validator=Range(minimum=1),
        metadata=about(
            "`anthropic` only (its API requires max_tokens): the reply's most tokens when a "
            "session sets none; at most `max_output_tokens`. Default: the lesser of "
            f"{DEFAULT_MAX_TOKENS} and `max_output_tokens`."
        ),
    )
    max_retries: int = attrs.field(
        default=_RETRIES.max_retries,
        validator=Range(minimum=0),
        metadata=about("Attempts after the first when a request fails before its first token."),
    )
    max_retry_wait: float = attrs.field(
        default=_RETRIES.max_wait,
        validator=Range(minimum=0),
        metadata=about("Seconds: a longer Retry-After from the provider is not waited for."),
    )


@attrs.frozen(kw_only=True)
class UpdateConversation:
    """Changes to a conversation; what is absent (or null) stays as it is. A change moves
    `updated_at` forward."""

    conversation_id: UUID
    title: str | None = attrs.field(
        default=None,
        metadata=about(
            "A new title, never replaced by a generated one", text_limit="max_title_chars"
        ),
    )
    is_archived: bool | None = attrs.field(
        default=None, metadata=about("Archive it (true) or bring it back (false).")
    )


@attrs.frozen(kw_only=True)
class DeleteConversation:
    """A conversation to delete for good, with everything in it."""

    conversation_id: UUID


@attrs.frozen(kw_only=True)
class GiveFeedback:
    """A rating of an assistant reply, with an optional comment; it replaces earlier feedback
    on that reply."""

    message_id: UUID = attrs.field(
        metadata=about("An assistant reply (a user message is 400 naming `message_id`).")
    )
    rating: Rating
    comment: str | None = attrs.field(
        default=None,
        metadata=about("Why (absent or null: no comment)", text_limit="max_comment_chars"),
    )


@attrs.frozen(kw_only=True)
class ClearFeedback:
    """A reply whose feedback to remove."""

    message_id: UUID
