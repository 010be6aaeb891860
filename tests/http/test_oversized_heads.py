"""A request head over 16 KiB is a JSON 431 however it arrives: whole (the app sees it, or
Hypercorn's h11 layer when it is bigger than one read) or in pieces (the h11 layer)."""

from __future__ import annotations

import pytest
import trio

from tests.http.conftest import Api
from tests.http.raw_http import Answer, Reader, connect


def _head_start(api: Api) -> bytes:
    return (
        f"GET /api/conversation/list?org_id={api.a.org_id} HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {api.a.token}\r\nX-Request-Id: big-head-1\r\nX-Big: "
    ).encode()


def _assert_json_431(answer: Answer) -> None:
    assert answer.status == 431
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    error = answer.json()["error"]
    assert error["code"] == "headers_too_large"
    assert "16384" in error["message"]
    assert error["request_id"] and error["request_id"] == answer.headers["x-request-id"]


@pytest.mark.parametrize("size", [20_000, 100_000])
async def test_an_oversized_head_arriving_whole_is_a_json_431(api: Api, size: int) -> None:
    stream = await connect(api.server.base_url)
    with trio.fail_after(30):
        reader = Reader(stream)
        await stream.send_all(_head_start(api) + b"a" * size + b"\r\n\r\n")
        _assert_json_431(await reader.answer())
        await reader.closed()
    await stream.aclose()


async def test_an_oversized_head_arriving_in_pieces_is_a_json_431(api: Api) -> None:
    stream = await connect(api.server.base_url)
    with trio.fail_after(30):
        reader = Reader(stream)
        await stream.send_all(_head_start(api))
        # 18,000 bytes of one header, its end never sent: only the last piece crosses the
        # cap, so nothing is sent after the server has answered and closed.
        for _ in range(3):
            await trio.sleep(0.05)  # separate reads on the server's side
            await stream.send_all(b"a" * 6000)
        _assert_json_431(await reader.answer())
        await reader.closed()
    await stream.aclose()


async def test_a_head_under_the_cap_is_served(api: Api) -> None:
    stream = await connect(api.server.base_url)
    with trio.fail_after(30):
        reader = Reader(stream)
        await stream.send_all(_head_start(api) + b"a" * 12_000 + b"\r\n\r\n")
        answer = await reader.answer()
    assert answer.status == 200 and answer.headers["x-request-id"] == "big-head-1"
    await stream.aclose()
