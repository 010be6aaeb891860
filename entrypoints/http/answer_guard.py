"""Between Hypercorn and Quart-Trio: every request ends with a whole answer, and the
connection is then kept or closed as HTTP says.

Why the last write of an answer is shielded (the cause of idle connections never closing,
and of `Connection: close` being ignored, with Quart-Trio 0.12 on Hypercorn 0.18):
Hypercorn does its connection housekeeping *inside* the app's call that sends the last body
chunk: that send ends the stream, which hands the app `http.disconnect`, and then either
arms the keep-alive timer (`idle_task.restart`, which takes a lock) or closes the socket
(`send_eof`, a checkpoint). Quart-Trio's request runs two tasks in one nursery and cancels
that nursery as soon as its message reader sees `http.disconnect`, i.e. while the sending
task is still inside that call. The next checkpoint raises `trio.Cancelled` into
Hypercorn's housekeeping, Quart-Trio's nursery absorbs it, and the connection is left with
no keep-alive timer and no close: it stays open until the client leaves. A bare ASGI app
does not cancel itself there, which is why Hypercorn alone closes such connections.
"""

from __future__ import annotations

import time
from typing import Any

import trio
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope

from conversation_service.entrypoints.http import access_log
from conversation_service.entrypoints.http.errors import error_json, request_id_for

# ASGI messages as plain dicts: the TypedDict unions hypercorn.typing offers do not narrow
# on "type".
Message = Any

STOPPING_MESSAGE = "the service is stopping; try again shortly"


class HttpLifecycle:
    """Where the HTTP server is in its shutdown, as every answer needs to know it."""

    def __init__(self) -> None:
        self.draining = False  # shutdown began: every answer closes its connection
        self._stopping = trio.Event()  # the HTTP server stops: new requests are answered 503
        self._requests: set[trio.CancelScope] = set()
        self._changed = trio.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """The HTTP server stops: requests from now on are answered 503, idle connections
        are closed (see connection.py)."""
        self.draining = True
        self._stopping.set()

    async def wait_stopping(self) -> None:
        await self._stopping.wait()

    @property
    def requests_in_flight(self) -> int:
        return len(self._requests)

    def request_started(self) -> trio.CancelScope:
        scope = trio.CancelScope()
        self._requests.add(scope)
        return scope

    def request_finished(self, scope: trio.CancelScope) -> None:
        self._requests.discard(scope)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for_requests(self) -> None:
        """Until no request is being handled."""
        while self._requests:
            await self._changed.wait()

    def cancel_requests(self) -> None:
        """Stop every request still handled: each one that has not begun its answer is
        answered 503 instead. (Later ones are answered 503 by the app, once their body
        is read: answered with its body unread, a client could see its connection reset.)"""
        for scope in self._requests:
            scope.cancel()


class AnswerGuard:
    """ASGI middleware around the Quart-Trio app."""

    def __init__(
        self, app: ASGIFramework, lifecycle: HttpLifecycle, *, send_deadline: float
    ) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.send_deadline = send_deadline  # bounds the shielded writes below

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answer = _Answer(send, self.lifecycle, self.send_deadline)
        cancel_scope = self.lifecycle.request_started()
        try:
            with cancel_scope:
                await self.app(scope, receive, answer.send)
            if cancel_scope.cancelled_caught:
                # Stopped by the server's shutdown, not the client: a whole answer all the same.
                await answer.stopped(scope)
        finally:
            self.lifecycle.request_finished(cancel_scope)


class _Answer:
    def __init__(self, send: ASGISendCallable, lifecycle: HttpLifecycle, deadline: float) -> None:
        self._send = send
        self.lifecycle = lifecycle
        self.deadline = deadline
        self.started = False
        self.finished = False
        self.began = time.perf_counter()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
            if self.lifecycle.draining:
                message = _closing(message)
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.finished = True
            await self._send_shielded(message)  # the module docstring says why
            return
        await self._send(message)

    async def _send_shielded(self, *messages: Message) -> None:
        with trio.CancelScope(shield=True) as shielded:
            shielded.deadline = trio.current_time() + self.deadline
            for message in messages:
                await self._send(message)

    async def stopped(self, scope: Message) -> None:
        """The app was cancelled by the shutdown: answer 503, or end what it began."""
        if self.finished:
            return
        if self.started:
            # Headers went out (an event stream): end the body so the message is whole.
            await self._send_shielded(
                {"type": "http.response.body", "body": b"", "more_body": False}
            )
            return
        headers = dict(scope.get("headers") or [])
        request_id = request_id_for(headers.get(b"x-request-id", b"").decode("latin-1"))
        body = error_json("shutting_down", STOPPING_MESSAGE, request_id)
        await self._send_shielded(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                    (b"x-request-id", request_id.encode()),
                ],
            },
            {"type": "http.response.body", "body": body, "more_body": False},
        )
        access_log.line(scope["method"], scope["path"], 503, self.began, request_id, " (stopping)")


def _closing(message: Message) -> Message:
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
    return {**message, "headers": [*headers, (b"connection", b"close")]}
