"""Server-Sent Events read from a provider's body, as the WHATWG rules say, from bytes.

The same decoding as httpx-sse's (which the client and the tests use): lines end at CR LF,
LF or CR; a line starting with a colon is a comment; `field: value` lines fill an event; an
empty line dispatches it when it holds data, a name or a retry (`id` is kept for the events
after it).
It is ours because importing httpx-sse imports httpx, and with it, when they are installed,
rich, pygments and click for httpx's command line: about 4 MiB in every server process,
which no longer uses httpx. Lines are split as bytes and decoded whole, so a character
split between two reads is never cut.
"""

from __future__ import annotations

_BOM = b"\xef\xbb\xbf"


class ServerSentEvent:
    """One dispatched event; one that names no type is a "message" (as the spec says)."""

    __slots__ = ("data", "event", "id", "retry")

    def __init__(self, *, event: str = "", data: str = "", id: str = "", retry: int | None = None):
        self.event, self.data, self.id, self.retry = event or "message", data, id, retry

    def __repr__(self) -> str:
        return f"ServerSentEvent(event={self.event!r}, data={self.data!r}, id={self.id!r})"


class EventStreamDecoder:
    """Bytes in, events out; feed it every piece of the body in order."""

    def __init__(self) -> None:
        self._pending = b""  # the start of a line whose end has not arrived
        self._after_cr = False  # the last piece ended with CR: an LF opening the next is its pair
        self._started = False  # a BOM is dropped only at the very start
        self._event = ""
        self._data: list[str] = []
        self._id = ""
        self._retry: int | None = None

    def feed(self, piece: bytes) -> list[ServerSentEvent]:
        if not self._started and (piece or self._pending):
            text = self._pending + piece
            if len(text) < len(_BOM) and _BOM.startswith(text):
                self._pending = text  # too short yet to say whether it opens with a BOM
                return []
            self._started, self._pending = True, b""
            piece = text.removeprefix(_BOM)
        if self._after_cr and piece.startswith(b"\n"):
            piece = piece[1:]
        if not piece:
            return []
        self._after_cr = piece.endswith(b"\r")
        text = self._pending + piece
        if b"\r" in text:
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = text.split(b"\n")
        self._pending = lines.pop()
        events = []
        for line in lines:
            # Nearly every line of a model's stream is one of the first two kinds: read
            # here, without a call for each.
            if not line:
                if self._event or self._data or self._retry is not None:
                    events.append(self._dispatch())
            elif line[:6] == b"data: ":
                self._data.append(line[6:].decode("utf-8", "replace"))
            else:
                event = self._line(line.decode("utf-8", "replace"))
                if event is not None:
                    events.append(event)
        return events

    def _dispatch(self) -> ServerSentEvent:
        event = ServerSentEvent(
            event=self._event, data="\n".join(self._data), id=self._id, retry=self._retry
        )
        self._event, self._data, self._retry = "", [], None  # the id carries on
        return event

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not (self._event or self._data or self._retry is not None):
                return None
            return self._dispatch()
        if line[0] == ":":
            return None
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
        return None
