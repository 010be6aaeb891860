"""The session state machine: every (state, input) pair, and whole runs against a model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conversation_service.domain.errors import InvalidTransition
from conversation_service.domain.model import ChatSession
from conversation_service.domain.session_machine import (
    SessionInput,
    SessionState,
    next_state,
    transitions,
)
from conversation_service.testing import strategies as cs

T0 = datetime(2026, 1, 1, tzinfo=UTC)


# The rules in words, written independently of the table they check.
def expected(state: SessionState, event: SessionInput) -> SessionState | None:
    if event is SessionInput.RECOVER:
        return SessionState.COMPLETED if state is SessionState.COMPLETED else SessionState.ACTIVE
    if state is SessionState.ACTIVE:
        return {
            SessionInput.SEND: SessionState.RESPONDING,
            SessionInput.COMPLETE: SessionState.COMPLETED,
        }.get(event)
    if state is SessionState.RESPONDING:
        return SessionState.ACTIVE if event is SessionInput.FINISH else None
    return SessionState.COMPLETED if event is SessionInput.COMPLETE else None


@given(cs.session_states, cs.session_inputs)
def test_every_state_input_pair_follows_the_rules(state: SessionState, event: SessionInput) -> None:
    want = expected(state, event)
    if want is None:
        with pytest.raises(InvalidTransition) as caught:
            next_state(state, event)
        assert caught.value.state is state and caught.value.input is event
        assert state.value in caught.value.message
    else:
        assert next_state(state, event) is want


def test_completed_session_cannot_send() -> None:
    with pytest.raises(InvalidTransition):
        next_state(SessionState.COMPLETED, SessionInput.SEND)


def test_table_copy_cannot_change_the_machine() -> None:
    table = transitions()
    table.clear()
    assert next_state(SessionState.ACTIVE, SessionInput.SEND) is SessionState.RESPONDING


def _session() -> ChatSession:
    return ChatSession(
        id=uuid4(),
        org_id=uuid4(),
        conversation_id=uuid4(),
        model_id=uuid4(),
        status=SessionState.ACTIVE,
        created_at=T0,
        updated_at=T0,
    )


class SessionLife(RuleBasedStateMachine):
    """Drive a ChatSession through random inputs, checked against two plain flags."""

    def __init__(self) -> None:
        super().__init__()
        self.session = _session()
        self.closed = False
        self.replying = False
        self.at = T0

    def _apply(self, event: SessionInput) -> bool:
        self.at += timedelta(seconds=1)
        try:
            self.session = self.session.apply(event, self.at)
        except InvalidTransition:
            return False
        assert self.session.updated_at == self.at
        return True

    @rule()
    def send(self) -> None:
        ok = self._apply(SessionInput.SEND)
        assert ok == (not self.closed and not self.replying)
        if ok:
            self.replying = True

    @rule()
    def finish(self) -> None:
        ok = self._apply(SessionInput.FINISH)
        assert ok == self.replying
        self.replying = False

    @rule()
    def complete(self) -> None:
        ok = self._apply(SessionInput.COMPLETE)
        assert ok == (not self.replying)
        if ok:
            self.closed = True

    @precondition(lambda self: True)
    @rule()
    def restart(self) -> None:
        assert self._apply(SessionInput.RECOVER)
        self.replying = False

    @invariant()
    def status_matches_model(self) -> None:
        if self.closed:
            assert self.session.status is SessionState.COMPLETED
        elif self.replying:
            assert self.session.status is SessionState.RESPONDING
        else:
            assert self.session.status is SessionState.ACTIVE


TestSessionLife = SessionLife.TestCase
