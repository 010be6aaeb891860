"""Where conversations, sessions, messages, organisations and tokens are kept."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

import attrs

from conversation_service.domain.branches import ListedMessage
from conversation_service.domain.errors import Conflict, DomainError
from conversation_service.domain.feedback import Feedback
from conversation_service.domain.model import (
    AccessRole,
    ChatSession,
    Conversation,
    Message,
    Org,
    Page,
)
from conversation_service.domain.search import SearchQuery
from conversation_service.domain.transfer import ImportReport, MessageRecord, TransferRecord


class StorageUnavailable(DomainError):
    """The store could not be reached or could not complete the operation."""

    code = "storage_unavailable"


class StaleVersion(Conflict):
    """A write was made over a state that is no longer the stored one (another writer got
    there first), or over an object that does not exist."""

    code = "stale_version"


@attrs.frozen(kw_only=True)
class ModelUsage:
    """What one model's replies cost an organisation over a period."""

    model_id: UUID
    replies: int
    prompt_tokens: int
    completion_tokens: int
    estimated_replies: int  # replies whose token counts are our estimate, not the provider's


@attrs.frozen(kw_only=True)
class ModelFeedback:
    """The ratings one model's replies got in an organisation over a period."""

    model_id: UUID
    up: int
    down: int


@attrs.frozen(kw_only=True)
class MessageBatch:
    """Some of a conversation's messages, in order, and where the next batch starts."""

    records: tuple[MessageRecord, ...]
    after: int | None  # pass as `after` for the next batch; None: there is no more


@attrs.frozen(kw_only=True)
class History:
    """The earlier messages a reply's model may be shown, as a store read them."""

    messages: tuple[Message, ...]  # oldest first
    not_read: int  # older ones that could be shown too, left unread (beyond the limit)


@attrs.frozen(kw_only=True)
class BestMatch:
    """The most relevant of a conversation's matching messages, read for its snippet."""

    message_id: UUID
    content: str


@attrs.frozen(kw_only=True)
class SearchHit:
    """A conversation that matches a search, as a store found it."""

    conversation: Conversation
    title_matches: bool
    message_count: int  # its matching messages, all counted
    message_ids: tuple[UUID, ...]  # the first domain.search.MATCHED_IDS of them, oldest first
    best: BestMatch | None  # None when only the title matches


class ConversationStore(Protocol):
    """Conversations, their chat sessions and messages, always scoped to an organisation.

    Every read takes the org_id: an object of another organisation is simply not found.
    Writes that touch a conversation (a new session, a new message) also move its
    `updated_at` forward to the time of that write.
    """

    async def add_conversation(self, conversation: Conversation) -> None: ...

    async def get_conversation(
        self, org_id: UUID, conversation_id: UUID
    ) -> Conversation | None: ...

    async def list_conversations(
        self, org_id: UUID, *, is_archived: bool | None, limit: int, offset: int
    ) -> Page[Conversation]:
        """Newest `updated_at` first (ties: newest `created_at`, then id)."""
        ...

    async def add_session(self, session: ChatSession) -> None: ...

    async def update_session(self, session: ChatSession) -> None:
        """Store the session's status, head_id, updated_at and version over version - 1.

        StaleVersion when the stored session is not at `session.version - 1` (a stale copy
        was changed) or does not exist: nothing is written then.
        """
        ...

    async def get_session(self, org_id: UUID, session_id: UUID) -> ChatSession | None: ...

    async def list_sessions(self, org_id: UUID, conversation_id: UUID) -> Sequence[ChatSession]:
        """Oldest first."""
        ...

    async def add_message(self, message: Message) -> None:
        """Append a message; messages keep the order in which they were added.

        A session holds one reply in progress at most (whichever instance writes it):
        StaleVersion for a second one, here and in begin_reply, and nothing is written.
        """
        ...

    async def update_message(self, message: Message) -> None:
        """Store a reply's content, status, finish_reason, usage, error, latency, updated_at.

        Only a reply stored IN_PROGRESS can change: StaleVersion for one that was finished
        already (by its writer, or by recovery) or does not exist.
        """
        ...

    async def begin_reply(
        self, user: Message | None, reply: Message, session: ChatSession, *, history_limit: int
    ) -> History:
        """In one transaction: read what the reply's model is shown before the user message
        it answers, add `user` (None: the reply answers a stored one again, its parent) and
        the reply (in progress), and update the session (as update_session, StaleVersion
        included: then nothing is written).

        What is shown: the branch that leads to the user message (its ancestors, walking
        parent ids up from its parent); with a CONVERSATION context, also the current
        branches (the heads' ancestors) of the conversation's other sessions, as far as they
        were added before the user message; merged in the order they were added. Never an
        empty reply or one still in progress; the newest `history_limit` of them, oldest
        first, and how many older ones were not read (with `history_limit` 0, nothing is
        read and nothing is counted).
        """
        ...

    async def end_reply(self, reply: Message, session: ChatSession) -> None:
        """In one transaction: update the finished reply and the session (as update_message
        and update_session, StaleVersion included)."""
        ...

    async def recover_session(self, session: ChatSession) -> None:
        """One session's interrupted replies (in progress) marked INCOMPLETE, and the
        recovered `session` stored (as update_session), in one transaction.

        For a session whose live state was lost while it was RESPONDING.
        """
        ...

    async def get_message(self, org_id: UUID, message_id: UUID) -> Message | None: ...

    async def list_messages(
        self, org_id: UUID, conversation_id: UUID, *, limit: int, offset: int
    ) -> Page[Message]:
        """Every message of the conversation, every branch's, in the order they were added
        (oldest first)."""
        ...

    async def list_branch(
        self,
        org_id: UUID,
        conversation_id: UUID,
        *,
        through: Message | None,
        limit: int,
        offset: int,
    ) -> Page[ListedMessage]:
        """The current branch of each of the conversation's sessions, merged in the order
        the messages were added, each with its sibling count and index.

        For `through`'s session, the branch through that message instead: from its first
        message down to it, then on down its newest children (domain.branches).
        """
        ...

    async def on_branch(self, org_id: UUID, leaf_id: UUID, message_id: UUID) -> bool:
        """Whether `message_id` is `leaf_id` or one of its ancestors."""
        ...

    async def newest_leaf(self, org_id: UUID, message_id: UUID) -> UUID | None:
        """The end of the branch down from `message_id` through its newest children (itself
        when it has none); None when there is no such message."""
        ...

    async def session_messages(self, org_id: UUID, session_id: UUID) -> Sequence[Message]:
        """All of one session's messages, in the order they were added."""
        ...

    async def conversation_messages(self, org_id: UUID, conversation_id: UUID) -> Sequence[Message]:
        """All of a conversation's messages, every session's, in the order they were added."""
        ...

    async def usage_by_model(
        self, org_id: UUID, *, start: datetime, end: datetime
    ) -> Sequence[ModelUsage]:
        """Replies created in [start, end) and their tokens, per model, ordered by model id."""
        ...

    async def recover_interrupted(self, at: datetime) -> int:
        """After a restart: mark in-progress replies INCOMPLETE (finish_reason "error",
        error "interrupted") and RESPONDING sessions ACTIVE (a version on).

        Returns how many replies were marked.
        """
        ...

    # -- conversations people keep: change, delete, rate, title, export, import --------------
    async def update_conversation(
        self,
        org_id: UUID,
        conversation_id: UUID,
        *,
        title: str | None,
        is_archived: bool | None,
        at: datetime,
    ) -> Conversation | None:
        """Change what is given (None: left as stored) and move `updated_at` forward to `at`;
        the conversation as stored then, or None if there is no such conversation."""
        ...

    async def set_generated_title(self, org_id: UUID, conversation_id: UUID, title: str) -> bool:
        """Title a conversation that has no title. False, and nothing written, when it has
        one already (its user's, or one generated before) or does not exist."""
        ...

    async def delete_conversation(
        self, org_id: UUID, conversation_id: UUID
    ) -> Sequence[UUID] | None:
        """Delete the conversation with its sessions, messages and feedback, and the kept
        Idempotency-Key answers of the organisation that name it or its sessions, in one
        transaction. The ids of the sessions deleted; None if there is no such conversation.
        """
        ...

    async def get_feedback(self, org_id: UUID, message_id: UUID) -> Feedback | None: ...

    async def put_feedback(self, feedback: Feedback) -> None:
        """Add the feedback on its message, or replace the feedback there."""
        ...

    async def delete_feedback(self, org_id: UUID, message_id: UUID) -> bool:
        """Remove the feedback on a message; False if it had none."""
        ...

    async def feedback_for(
        self, org_id: UUID, message_ids: Sequence[UUID]
    ) -> Mapping[UUID, Feedback]:
        """The feedback on those of the messages that have some, by message id."""
        ...

    async def feedback_by_model(
        self, org_id: UUID, *, start: datetime, end: datetime
    ) -> Sequence[ModelFeedback]:
        """Ratings of the replies created in [start, end), per model, ordered by model id."""
        ...

    async def export_conversations(
        self, org_id: UUID, *, after: Conversation | None, limit: int
    ) -> Sequence[Conversation]:
        """Up to `limit` of the organisation's conversations, oldest `created_at` first (ties:
        by id), from just after `after` (the last of the previous batch)."""
        ...

    async def export_messages(
        self, org_id: UUID, conversation_id: UUID, *, after: int | None, limit: int
    ) -> MessageBatch:
        """Up to `limit` of a conversation's messages with their feedback, in the order they
        were added, from just after `after` (None: from the first)."""
        ...

    async def import_records(
        self,
        org_id: UUID,
        records: Callable[[], Iterable[TransferRecord]],
        *,
        new_id: Callable[[], UUID],
    ) -> ImportReport:
        """Store `records` (as domain.transfer.as_imported makes them: each session after
        its conversation, each message after its session) in one transaction: all or none.

        `records()` is called for each attempt and must give the same records each time.
        An object whose id is taken (by any organisation) is stored under `new_id()`, and
        every record naming it is changed to match. Timestamps are stored as given.
        """
        ...

    async def search_conversations(
        self,
        org_id: UUID,
        query: SearchQuery,
        *,
        is_archived: bool | None,
        limit: int,
        offset: int,
    ) -> Page[SearchHit]:
        """The organisation's conversations whose title, or one of whose messages (but a
        reply in progress), holds every term of `query` (domain/search.py says how words
        match), best first.

        Best first: those whose title matches, then by relevance (the best of their
        matching messages'; 0 for a title alone), then newest `updated_at`, `created_at`,
        id, as list_conversations. A message's relevance is the store's own measure, higher
        for the query's terms more often in a shorter message: FTS5's bm25 on SQLite, ts_rank
        on PostgreSQL, the terms' share of the words in memory (domain.search.relevance). The
        best message is the most relevant (the earliest of equals).
        """
        ...


@attrs.frozen(kw_only=True)
class TokenInfo:
    """What is kept of a token: never the token itself, and not shown its hash."""

    id: UUID
    org_id: UUID
    role: AccessRole
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class AccessStore(Protocol):
    """Organisations and the hashes of their tokens."""

    async def add_org(self, org: Org) -> None: ...

    async def get_org(self, org_id: UUID) -> Org | None: ...

    async def count_orgs(self) -> int: ...

    async def add_token(
        self,
        *,
        token_id: UUID,
        org_id: UUID,
        role: AccessRole,
        token_hash: str,
        at: datetime,
        expires_at: datetime | None = None,
    ) -> None: ...

    async def find_token(self, token_hash: str, at: datetime) -> TokenInfo | None:
        """The token whose hash is `token_hash`, unless revoked or expired at `at`."""
        ...

    async def list_tokens(self, org_id: UUID) -> Sequence[TokenInfo]:
        """The organisation's tokens, oldest first, revoked and expired ones included."""
        ...

    async def revoke_token(self, token_id: UUID, at: datetime) -> TokenInfo | None:
        """Revoke a token (a second revoke keeps the first time); None if there is none."""
        ...


@attrs.frozen(kw_only=True)
class IdempotentResult:
    """A POST answered under an Idempotency-Key, kept so that a retry gets the same answer."""

    fingerprint: str  # what the request was (method, path, query, body), hashed
    done: bool  # False while the first request is still being handled
    status: int | None = None
    body: str | None = None  # the JSON answer, or a JSON reference to a streamed reply


class IdempotencyStore(Protocol):
    """Idempotency keys, scoped by the caller (organisation and token)."""

    async def claim_key(
        self, scope: str, key: str, fingerprint: str, at: datetime
    ) -> IdempotentResult | None:
        """Claim `key` for a new request (None), or the result already kept for it."""
        ...

    async def finish_key(self, scope: str, key: str, status: int, body: str) -> None: ...

    async def release_key(self, scope: str, key: str) -> None:
        """Forget a claim whose request failed, so that a retry runs afresh."""
        ...

    async def forget_keys(self, *, before: datetime | None, unfinished: bool = False) -> None:
        """Drop keys claimed before `before`; with `unfinished`, also every unfinished claim
        (after a restart nothing is in flight any more)."""
        ...


@attrs.frozen(kw_only=True)
class StoredModel:
    """A model an organisation registered for itself, as kept: its registry entry as JSON
    and its key encrypted (never in clear)."""

    id: UUID
    org_id: UUID
    entry: str
    encrypted_api_key: str | None
    created_at: datetime


class OrgModelStore(Protocol):
    """Models organisations registered at runtime."""

    async def add_org_model(self, model: StoredModel) -> None: ...

    async def list_org_models(self) -> Sequence[StoredModel]:
        """Every organisation's, oldest first (read once at start)."""
        ...

    async def delete_org_model(self, org_id: UUID, model_id: UUID) -> bool:
        """Forget one; False if that organisation has no such model."""
        ...
