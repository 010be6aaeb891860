"""Between Hypercorn and Quart-Trio: the connection is kept or closed as HTTP says.

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

from typing import Any

import trio
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope

# ASGI messages as plain dicts: the TypedDict unions hypercorn.typing offers do not narrow
# on "type".
Message = Any


class AnswerGuard:
    """ASGI middleware around the Quart-Trio app."""

    def __init__(self, app: ASGIFramework, *, send_deadline: float) -> None:
        self.app = app
        self.send_deadline = send_deadline  # bounds the shielded write below

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True) as shielded:  # the module docstring says why
                    shielded.deadline = trio.current_time() + self.send_deadline
                    await send(message)
                return
            await send(message)

        await self.app(scope, receive, guarded_send)
