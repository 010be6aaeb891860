"""Every error the domain raises; the HTTP edge maps each class to a status code in one table."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidField(DomainError):
    """A field of the input is missing, of the wrong type or out of range."""

    code = "invalid_field"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError):
    """A named object does not exist (in the caller's organisation)."""

    code = "not_found"


class ConversationNotFound(NotFound):
    """No conversation with that id in this organisation."""

    def __init__(self, conversation_id: object) -> None:
        super().__init__(f"conversation {conversation_id} not found")


class SessionNotFound(NotFound):
    """No chat session with that id in this organisation."""

    def __init__(self, session_id: object) -> None:
        super().__init__(f"chat session {session_id} not found")


class MessageNotFound(NotFound):
    """No message with that id in this chat session."""

    def __init__(self, message_id: object) -> None:
        super().__init__(f"message {message_id} not found")


class ModelNotFound(NotFound):
    """No language model with that id is available to this organisation."""

    def __init__(self, model_id: object) -> None:
        super().__init__(f"model {model_id} not found")


class OrgNotFound(NotFound):
    """No organisation with that id."""

    def __init__(self, org_id: object) -> None:
        super().__init__(f"organisation {org_id} not found")


class Conflict(DomainError):
    """The request is valid but clashes with the current state of an object."""

    code = "conflict"


class InvalidTransition(Conflict):
    """The chat session's state machine has no transition for this input in this state."""

    code = "invalid_transition"

    def __init__(self, state: object, input: object) -> None:  # noqa: A002 - h2's naming
        super().__init__(f"cannot {_name(input)} a session that is {_name(state)}")
        self.state = state
        self.input = input


class SessionCompleted(Conflict):
    """The chat session is completed and takes no more messages."""

    code = "session_completed"

    def __init__(self, session_id: object) -> None:
        super().__init__(f"chat session {session_id} is completed and takes no more messages")


class SessionBusy(Conflict):
    """The chat session is generating a reply and the caller asked not to wait."""

    code = "session_busy"

    def __init__(self, session_id: object) -> None:
        super().__init__(f"chat session {session_id} is already generating a reply")


class NotOnCurrentBranch(Conflict):
    """The message is on another branch of its session than the current one."""

    code = "not_on_current_branch"

    def __init__(self, message_id: object) -> None:
        super().__init__(
            f"message {message_id} is not on the chat session's current branch; "
            "select_branch it first"
        )


class ReplyInProgress(Conflict):
    """The reply is still being written: it can be regenerated once it has ended."""

    code = "reply_in_progress"

    def __init__(self, message_id: object) -> None:
        super().__init__(f"reply {message_id} is still being written; cancel it or wait")


class NothingToRegenerate(Conflict):
    """The chat session's current branch does not end with a reply."""

    code = "nothing_to_regenerate"

    def __init__(self, session_id: object) -> None:
        super().__init__(f"chat session {session_id} has no reply to regenerate")


class ModelUnavailable(Conflict):
    """The session's model is no longer offered (its organisation removed it)."""

    code = "model_unavailable"

    def __init__(self, model_id: object) -> None:
        super().__init__(f"model {model_id} is no longer available; start a session on another")


class Unauthenticated(DomainError):
    """The bearer token is missing, malformed, unknown, revoked or expired."""

    code = "unauthenticated"


class Forbidden(DomainError):
    """The caller is authenticated but may not do this."""

    code = "forbidden"


class RateLimited(DomainError):
    """The caller made too many requests or holds too many streams."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency (storage, the service itself while stopping) cannot serve the request now."""

    code = "unavailable"


class ShuttingDown(Unavailable):
    """The service is stopping and takes no new work."""

    code = "shutting_down"

    def __init__(self, message: str = "the service is stopping") -> None:
        super().__init__(message)


def _name(value: object) -> str:
    return str(getattr(value, "value", value))
