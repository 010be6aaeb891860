"""The provider streams' SSE decoder, held to httpx-sse's (the client's) on any stream cut
anywhere."""

from __future__ import annotations

from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import given
from hypothesis import strategies as st

from conversation_service.adapters.llm.event_stream import EventStreamDecoder

_FIELDS = st.sampled_from(["data", "event", "id", "retry", "other", ""])
_VALUES = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12).map(
    lambda text: text.replace("\r", "").replace("\n", "")
)
_VALUES = st.one_of(_VALUES, st.from_regex(r"[+-]?[0-9٣]{1,4}", fullmatch=True))
_ENDS = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def streams(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["field", "comment", "blank", "bare"]))
        if kind == "field":
            space = draw(st.sampled_from(["", " "]))
            line = f"{draw(_FIELDS)}:{space}{draw(_VALUES)}"
        elif kind == "comment":
            line = ":" + draw(_VALUES)
        elif kind == "bare":
            line = draw(_FIELDS)
        else:
            line = ""
        lines.append(line + draw(_ENDS))
    return "".join(lines)


class _SpecDecoder(SSEDecoder):
    """httpx-sse's decoder, where it strays from the spec put right: an empty line after
    nothing but an `id` dispatches nothing (httpx-sse dispatches one for every empty line
    once an id was seen; ours, as httpx-sse otherwise, needs data, a name or a retry), and a
    retry is ASCII digits only (httpx-sse takes whatever int() takes: "-1", "+5", "٣")."""

    def decode(self, line: str):  # type: ignore[no-untyped-def]
        if not line and not (self._event or self._data or self._retry is not None):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "retry" and not (value.isascii() and value.isdigit()):
            return None
        return super().decode(line)


def reference(text: str) -> list[tuple[str, str, str, int | None]]:
    lines, decoder = SSELineDecoder(), _SpecDecoder()
    events = []
    for line in (lines.decode(text) + lines.flush()) if text else []:
        event = decoder.decode(line)
        if event is not None:
            events.append((event.event, event.data, event.id, event.retry))
    return events


def decoded(pieces: list[bytes]) -> list[tuple[str, str, str, int | None]]:
    decoder = EventStreamDecoder()
    return [(e.event, e.data, e.id, e.retry) for piece in pieces for e in decoder.feed(piece)]


@given(streams(), st.lists(st.integers(0, 400), max_size=8))
def test_any_stream_cut_anywhere_decodes_as_httpx_sse_does(text, cuts):
    raw = text.encode()
    points = sorted({min(cut, len(raw)) for cut in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert decoded(pieces) == reference(text)


def test_a_character_split_between_reads_is_whole():
    raw = "data: é✓\n\n".encode()
    assert decoded([raw[:7], raw[7:9], raw[9:]]) == [("message", "é✓", "", None)]


def test_a_cr_then_lf_in_the_next_read_is_one_line_end():
    assert decoded([b"data: a\r", b"\ndata: b\r", b"\n\r\n"]) == [("message", "a\nb", "", None)]


def test_a_bom_is_dropped_at_the_start_only():
    assert decoded([b"\xef\xbb", b"\xbfdata: x\n\n"]) == [("message", "x", "", None)]
    assert decoded([b"data: \xef\xbb\xbfx\n\n"]) == [("message", "\ufeffx", "", None)]


def test_the_id_carries_on_and_an_event_without_its_empty_line_is_none():
    decoder = EventStreamDecoder()
    first, second = decoder.feed(b"id: 7\ndata: a\n\ndata: b\n\ndata: c")
    assert (first.id, second.id) == ("7", "7")
    assert decoder.feed(b"") == []


def test_a_data_value_keeps_all_but_the_one_space_after_its_colon():
    text = "data:  two spaces \ndata:none\ndata\ndata: \n\n"
    assert (
        decoded([text.encode()])
        == reference(text)
        == [("message", " two spaces \nnone\n\n", "", None)]
    )
