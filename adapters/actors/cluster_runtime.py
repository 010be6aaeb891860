"""The SessionRuntime of one instance among several: each session runs where its lease is.

A session's lease stays with the instance that took it until that instance stops (or is
gone, when another takes it over): commands for it that arrive elsewhere are carried there
and answered from there, and its replies are followed through the database. Alone (SQLite,
the in-memory store), every session is this instance's and nothing here is remote.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import trio

from conversation_service.adapters.actors.remote_reply import RemoteReply, dropped_outcome
from conversation_service.adapters.actors.reply_log import ReplyLog
from conversation_service.adapters.actors.supervisor import SessionSupervisor
from conversation_service.domain import errors
from conversation_service.domain.branches import Edit, NewQuestion, Regenerate, TurnRequest
from conversation_service.domain.model import ChatSession, MessageStatus
from conversation_service.domain.replies import Multitask
from conversation_service.ports.cluster import Cluster, SessionAnswer, SessionRequest
from conversation_service.ports.session_runtime import LiveReply
from conversation_service.ports.storage import ConversationStore, StaleVersion, StorageUnavailable

log = logging.getLogger(__name__)

_ATTEMPTS = 3  # a session moving between instances is asked where it is again, this often


class ClusterRuntime:
    """Routes each command to the instance running the session; serves the others' commands."""

    def __init__(
        self, *, local: SessionSupervisor, cluster: Cluster, store: ConversationStore
    ) -> None:
        self.local = local
        self._cluster = cluster
        self._store = store

    # -- SessionRuntime -------------------------------------------------------------------
    async def send(
        self,
        session: ChatSession,
        request: TurnRequest,
        *,
        multitask: Multitask,
        message_id: UUID,
        user_message_id: UUID | None,
    ) -> LiveReply:
        kind, body = _turn_body(request)
        body.update({
            "multitask": multitask.value,
            "message_id": str(message_id),
            "user_message_id": None if user_message_id is None else str(user_message_id),
        })  # fmt: skip
        for _ in range(_ATTEMPTS):
            owner = await self._owner(session)
            if owner is None:
                return await self.local.send(
                    session, request, multitask=multitask,
                    message_id=message_id, user_message_id=user_message_id,
                )  # fmt: skip
            asked = self._request(session, kind, body)
            # As for a local send: its answer is awaited even by a cancelled sender.
            with trio.CancelScope(shield=True):
                answer = await self._cluster.ask(owner, asked)
            if answer.moved:
                continue
            _raise(answer)
            return RemoteReply(
                message_id=message_id,
                user_message_id=user_message_id,  # a regenerate's: read from its row
                chat_session_id=session.id,
                org_id=session.org_id,
                model_id=session.model_id,
                store=self._store,
                wait_change=self._cluster.wait_reply_change,
                dropped=functools.partial(self._dropped, asked.id),
            )
        raise errors.Unavailable("the chat session is moving between instances; try again")

    async def cancel(self, session: ChatSession, message_id: UUID | None) -> bool:
        body = {"message_id": None if message_id is None else str(message_id)}
        answer = await self._remote_or(session, "cancel", body)
        if answer is None:
            return await self.local.cancel(session, message_id)
        return bool(answer.value)

    async def complete(self, session: ChatSession) -> ChatSession:
        answer = await self._remote_or(session, "complete", {})
        if answer is None:
            return await self.local.complete(session)
        return await self._stored(session)

    async def select_branch(self, session: ChatSession, message_id: UUID) -> ChatSession:
        answer = await self._remote_or(session, "select_branch", {"target": str(message_id)})
        if answer is None:
            return await self.local.select_branch(session, message_id)
        return await self._stored(session)

    async def _stored(self, session: ChatSession) -> ChatSession:
        """The session as the instance running it stored it."""
        stored = await self._store.get_session(session.org_id, session.id)
        if stored is None:
            raise errors.SessionNotFound(session.id)
        return stored

    async def retire(self, session: ChatSession) -> None:
        # Claimed here when free, or carried to its holder: either way, the instance every
        # other one sends the session's commands to from now on is one that refuses them.
        await self._remote_or(session, "retire", {})
        await self.local.retire_session(session.id)  # and refused here too, if run elsewhere

    async def forget(self, org_id: UUID, session_ids: Sequence[UUID]) -> None:
        for session_id in session_ids:
            if self.local.was_retired(session_id):
                continue  # retired before its rows were deleted
            await self.local.retire_session(session_id)
            if not self._cluster.alone:
                await self._retire_elsewhere(org_id, session_id)
        # After the commands above: their rows go too.
        await self._cluster.forget(session_ids)

    async def _retire_elsewhere(self, org_id: UUID, session_id: UUID) -> None:
        """Retire a deleted session wherever its lease says it runs (one made while the
        others were retired); the lease is read, not claimed: the session is gone."""
        for _ in range(_ATTEMPTS):
            holder = await self._cluster.holder(session_id)
            if holder is None or holder == self._cluster.instance_id:
                return
            request = SessionRequest(
                id=uuid.uuid4(), session_id=session_id, org_id=org_id, kind="retire",
                body={}, sender=self._cluster.instance_id,
            )  # fmt: skip
            try:
                answer = await self._cluster.ask(holder, request)
            except errors.Unavailable as error:
                log.warning("chat session %s (deleted): %s could not retire it: %s",
                            session_id, holder, error)  # fmt: skip
                return
            if not answer.moved:
                return

    def live_session(self, session_id: UUID) -> ChatSession | None:
        return self.local.live_session(session_id)

    async def find_reply(self, session: ChatSession, message_id: UUID) -> LiveReply | None:
        found = self.local.live_reply(session.id, message_id)
        if found is not None or self._cluster.alone:
            return found
        # Being written by another instance: followed through its row.
        stored = await self._store.get_message(session.org_id, message_id)
        if stored is None or stored.chat_session_id != session.id:
            return None
        if stored.status is not MessageStatus.IN_PROGRESS:
            return None
        return RemoteReply(
            message_id=message_id,
            user_message_id=stored.parent_id,  # the user message it answers
            chat_session_id=session.id,
            org_id=session.org_id,
            model_id=stored.model_id,
            store=self._store,
            wait_change=self._cluster.wait_reply_change,
        )

    # -- routing --------------------------------------------------------------------------
    async def _owner(self, session: ChatSession) -> str | None:
        """The instance running the session, or None when it is this one (claimed now if
        it was free)."""
        if self._cluster.alone or self.local.find(session.id) is not None:
            return None
        owner = await self._cluster.claim(session.id, session.org_id)
        return None if owner == self._cluster.instance_id else owner

    async def _remote_or(
        self, session: ChatSession, kind: str, body: Mapping[str, Any]
    ) -> SessionAnswer | None:
        """The answer of the instance running the session; None when it is this one."""
        for _ in range(_ATTEMPTS):
            owner = await self._owner(session)
            if owner is None:
                return None
            answer = await self._cluster.ask(owner, self._request(session, kind, body))
            if not answer.moved:
                _raise(answer)
                return answer
        raise errors.Unavailable("the chat session is moving between instances; try again")

    def _request(self, session: ChatSession, kind: str, body: Mapping[str, Any]) -> SessionRequest:
        return SessionRequest(
            id=uuid.uuid4(),
            session_id=session.id,
            org_id=session.org_id,
            kind=kind,
            body=body,
            sender=self._cluster.instance_id,
        )

    async def _dropped(self, request_id: UUID) -> dict[str, Any] | None:
        answer = await self._cluster.answer_of(request_id)
        if answer is None or not isinstance(answer.value, dict):
            return None
        dropped = answer.value.get("dropped")
        return dropped if isinstance(dropped, dict) else None

    # -- serving the other instances ------------------------------------------------------
    async def serve_requests(self) -> None:
        """Run the commands other instances send for the sessions this one runs."""
        async with trio.open_nursery() as nursery:
            while True:
                request = await self._cluster.next_request()
                nursery.start_soon(self._serve, request)

    async def _serve(self, request: SessionRequest) -> None:
        try:
            answer = await self._answer(request)
        except errors.DomainError as error:
            answer = SessionAnswer(error=_said(error))
        except Exception:
            log.exception("chat session %s: a command from %s failed", request.session_id,
                          request.sender)  # fmt: skip
            answer = SessionAnswer(error=_said(errors.Unavailable("the command failed")))
        try:
            await self._cluster.answer(request, answer)
        except StorageUnavailable as error:
            log.warning("chat session %s: could not answer %s: %s", request.session_id,
                        request.sender, error)  # fmt: skip

    async def _answer(self, request: SessionRequest) -> SessionAnswer:
        owner = await self._cluster.claim(request.session_id, request.org_id)
        if owner != self._cluster.instance_id:
            return SessionAnswer(moved=True)
        if request.kind == "retire":  # its rows may be deleted already (forget)
            await self.local.retire_session(request.session_id)
            return SessionAnswer(value=True)
        session = await self._store.get_session(request.org_id, request.session_id)
        if session is None:
            raise errors.SessionNotFound(request.session_id)
        body = request.body
        if request.kind == "cancel":
            named = body.get("message_id")
            stopped = await self.local.cancel(session, None if named is None else UUID(named))
            return SessionAnswer(value=stopped)
        if request.kind == "complete":
            await self.local.complete(session)
            return SessionAnswer(value=True)
        if request.kind == "select_branch":
            await self.local.select_branch(session, UUID(body["target"]))
            return SessionAnswer(value=True)
        asked = body.get("user_message_id")
        reply = await self.local.send(
            session,
            _turn_of(request.kind, body),
            multitask=Multitask(body["multitask"]),
            message_id=UUID(body["message_id"]),
            user_message_id=None if asked is None else UUID(asked),
        )
        reply.on_finished(lambda: self._report_if_dropped(request, reply))
        return SessionAnswer(value={})

    def _report_if_dropped(self, request: SessionRequest, reply: ReplyLog) -> None:
        """A reply that ended before it began has no row to read: say how it ended."""
        if reply.started or reply.outcome is None:
            return
        said = SessionAnswer(value={"dropped": dropped_outcome(reply.outcome)})

        async def report() -> None:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                try:
                    await self._cluster.answer(request, said)
                    await self._cluster.reply_changed(reply.message_id)
                except (StorageUnavailable, StaleVersion) as error:
                    log.warning("reply %s: could not say it was dropped: %s",
                                reply.message_id, error)  # fmt: skip

        self.local.spawn(report, name=f"dropped-{reply.message_id}")

    async def adopt_orphans(self) -> int:
        """Take over the sessions of instances that are gone; how many were taken."""
        taken = 0
        for org_id, session_id in await self._cluster.orphans():
            owner = await self._cluster.claim(session_id, org_id)
            if owner != self._cluster.instance_id:
                continue
            session = await self._store.get_session(org_id, session_id)
            if session is not None:
                self.local.adopt(session)  # its actor loads it: an interrupted reply recovers
                taken += 1
        return taken


def _turn_body(request: TurnRequest) -> tuple[str, dict[str, Any]]:
    """The command kind and body that carry a turn to another instance."""
    match request:
        case NewQuestion(text=text):
            return "send", {"text": text}
        case Regenerate(reply_id=reply_id):
            return "regenerate", {"target": None if reply_id is None else str(reply_id)}
        case Edit(message_id=message_id, text=text):
            return "edit", {"target": str(message_id), "text": text}


def _turn_of(kind: str, body: Mapping[str, Any]) -> TurnRequest:
    target = body.get("target")
    if kind == "regenerate":
        return Regenerate(reply_id=None if target is None else UUID(target))
    if kind == "edit":
        return Edit(message_id=UUID(str(target)), text=str(body["text"]))
    return NewQuestion(text=str(body["text"]))


def _said(error: errors.DomainError) -> dict[str, Any]:
    said: dict[str, Any] = {"code": error.code, "message": error.message}
    if isinstance(error, errors.RateLimited):
        said["retry_after"] = error.retry_after
    if isinstance(error, errors.InvalidField):
        said.update(field=error.field, reason=error.reason)
    return said


# The error an answer names, raised again where the command was asked: its class decides the
# HTTP status, as if it had been raised here.
_ERRORS: dict[str, type[errors.DomainError]] = {
    cls.code: cls
    for cls in (
        errors.SessionCompleted, errors.SessionBusy, errors.ModelUnavailable,
        errors.InvalidTransition, errors.ShuttingDown, errors.Unavailable, errors.NotFound,
        StorageUnavailable, errors.NotOnCurrentBranch, errors.ReplyInProgress,
        errors.NothingToRegenerate,
    )
}  # fmt: skip


def _raise(answer: SessionAnswer) -> None:
    said = answer.error
    if said is None:
        return
    code, message = str(said.get("code")), str(said.get("message"))
    if code == errors.RateLimited.code:
        raise errors.RateLimited(message, retry_after=float(said.get("retry_after") or 1.0))
    if code == errors.InvalidField.code:
        raise errors.InvalidField(str(said.get("field")), str(said.get("reason")))
    cls = _ERRORS.get(code, errors.Unavailable)
    error = cls.__new__(cls)
    errors.DomainError.__init__(error, message)  # each class's own __init__ builds a message
    raise error
