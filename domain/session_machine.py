"""The chat session's state machine, as a transition table (after python-hyper/h2).

A session is ACTIVE when it can take a message, RESPONDING while a reply is generated, and
COMPLETED once closed for good. A (state, input) pair missing from the table is an error.
"""

from __future__ import annotations

import enum

from conversation_service.domain.errors import InvalidTransition


class SessionState(enum.Enum):
    """Where a chat session is in its life."""

    ACTIVE = "active"
    RESPONDING = "responding"
    COMPLETED = "completed"


class SessionInput(enum.Enum):
    """What can happen to a chat session."""

    SEND = "send"  # a reply starts
    FINISH = "finish"  # the reply ended, whatever its outcome (completed, failed, cancelled)
    COMPLETE = "complete"  # the owner closes the session
    RECOVER = "recover"  # the service restarted while a reply was being generated


_TRANSITIONS: dict[tuple[SessionState, SessionInput], SessionState] = {
    (SessionState.ACTIVE, SessionInput.SEND): SessionState.RESPONDING,
    (SessionState.ACTIVE, SessionInput.COMPLETE): SessionState.COMPLETED,
    (SessionState.ACTIVE, SessionInput.RECOVER): SessionState.ACTIVE,
    (SessionState.RESPONDING, SessionInput.FINISH): SessionState.ACTIVE,
    (SessionState.RESPONDING, SessionInput.RECOVER): SessionState.ACTIVE,
    (SessionState.COMPLETED, SessionInput.COMPLETE): SessionState.COMPLETED,
    (SessionState.COMPLETED, SessionInput.RECOVER): SessionState.COMPLETED,
}


def transitions() -> dict[tuple[SessionState, SessionInput], SessionState]:
    """A copy of the whole table, for documentation and tests."""
    return dict(_TRANSITIONS)


def next_state(state: SessionState, event: SessionInput) -> SessionState:
    """The state after `event`, or InvalidTransition when the table has no such pair."""
    try:
        return _TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(state, event) from None
