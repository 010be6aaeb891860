"""The playground in a real browser, as a person uses it.

Playwright drives Chromium (Debian's `chromium-headless-shell`: Playwright's own browser
download cannot be reached from these machines) against `conversation-service serve`, run as
a user runs it, on SQLite, with the token and org_id it prints on its first start. The echo
model waits between words so a reply streams for a while. The page runs under its own
Content-Security-Policy (no bypass), so a script it blocks fails the tests. One browser for
the module, a fresh browser context (storage) for each test.

A machine without the browser fails here; it does not skip. `.ci/run` installs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, Request, expect, sync_playwright

from conversation_service.entrypoints.http.playground_routes import PLAYGROUND_ASSETS
from tests.http.conftest import DATABASE_URL, ECHO
from tests.http.served import Served, serve

pytestmark = pytest.mark.backends("sqlite")

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "playground.png"
PLAYGROUND = resources.files("conversation_service.entrypoints.http").joinpath("playground")
# The real binary first: /usr/bin/chromium-headless-shell is a shell script around it.
CHROMIUM = (
    "/usr/lib/chromium/chromium-headless-shell",
    "chromium-headless-shell",
    "/usr/lib/chromium/chromium",
    "chromium",
)
WORD_DELAY_MS = 40
MAX_STREAMS = 3  # per organisation: the 429 test fills them
PAGE_SIZE = 20  # conversations.js


def chromium() -> str:
    """CHROMIUM_PATH, else the first of CHROMIUM found; none is a failure, never a skip."""
    for candidate in (os.environ.get("CHROMIUM_PATH"), *CHROMIUM):
        found = candidate and shutil.which(candidate)
        if found:
            return found
    pytest.fail(
        "no Chromium to drive: `apt-get install chromium-headless-shell` (.ci/run does), "
        "or set CHROMIUM_PATH"
    )


def words(count: int, word: str = "word") -> str:
    return " ".join(f"{word}{n}" for n in range(count))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("playground") / "data"
    with pytest.MonkeyPatch.context() as env:
        env.delenv(DATABASE_URL, raising=False)
        server = serve(
            data_dir,
            "--echo-delay-ms", str(WORD_DELAY_MS),
            "--max-streams-per-org", str(MAX_STREAMS),
            "--shutdown-grace", "1",
        )  # fmt: skip
    try:
        assert server.org_id and server.token, "".join(server.output)
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    # Playwright's sync API runs an asyncio loop of its own, made by the loop policy: the
    # default one, not trio-asyncio's, which the service installs when it is imported.
    policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=executable)
            try:
                yield launched
            finally:
                launched.close()
    finally:
        asyncio.set_event_loop_policy(policy)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert errors == [], "the page's scripts failed"


@pytest.fixture
def api(served: Served) -> Iterator[httpx.Client]:
    """The API, to set up and to check what the page did."""
    headers = {"Authorization": f"Bearer {served.token}"}
    params = {"org_id": served.org_id or ""}
    with httpx.Client(base_url=served.base_url, headers=headers, params=params) as client:
        yield client


def created(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def conversation_with_sessions(
    api: httpx.Client, title: str, sessions: int = 1
) -> tuple[str, list[str]]:
    """A conversation made through the API, and the ids of its `sessions` sessions on echo."""
    conversation = created(api, "/api/conversation/create", {"title": title})
    body = {"conversation_id": conversation["id"], "model_id": ECHO}
    made = [created(api, "/api/conversation/create_session", body)["id"] for _ in range(sessions)]
    return conversation["id"], made


def stored_replies(api: httpx.Client, conversation_id: str, session_id: str) -> list[dict]:
    """The replies stored in a session, as the API's messages endpoint gives them."""
    found = api.get("/api/conversation/messages", params={"conversation_id": conversation_id})
    assert found.status_code == 200, found.text
    return [
        m
        for m in found.json()["messages"]
        if m["chat_session_id"] == session_id and m["role"] == "assistant"
    ]


def connect(page: Page, served: Served, token: str | None = None) -> None:
    """Open the service's root as a person would, paste the token and org_id, Connect."""
    page.goto(served.base_url + "/")
    expect(page).to_have_url(served.base_url + "/playground")
    page.fill("#token", token or served.token or "")
    page.fill("#org", served.org_id or "")
    page.click("button:text('Connect')")


def open_conversation(page: Page, served: Served, conversation_id: str, session_id: str) -> Locator:
    """The column of `session_id`, its conversation opened by its link in the list."""
    connect(page, served)
    page.locator(f"#conversations li[data-conversation-id='{conversation_id}'] button").click()
    expect(page).to_have_url(f"{served.base_url}/playground#c={conversation_id}")
    column = page.locator(f".column[data-session-id='{session_id}']")
    expect(column).to_be_visible()
    return column


def one_session_open(
    page: Page, served: Served, api: httpx.Client, title: str
) -> tuple[str, str, Locator]:
    """A new conversation with one session, opened in the page: their ids, and its column."""
    conversation_id, (session_id,) = conversation_with_sessions(api, title)
    return conversation_id, session_id, open_conversation(page, served, conversation_id, session_id)


def send(column: Locator, message: str) -> Locator:
    """Type `message` and press Enter; the reply's bubble."""
    column.locator("textarea").fill(message)
    column.locator("textarea").press("Enter")
    return column.locator(".message.assistant .text").last


def test_send_and_watch_the_reply_stream(page: Page, served: Served, api: httpx.Client) -> None:
    assert f"{served.base_url}/playground" in "".join(served.output), "first start names it"
    connect(page, served, token="cs_" + "x" * 43)
    expect(page.locator("#notice")).to_contain_text("Not authenticated (401, unauthenticated)")
    connect(page, served)
    expect(page.locator("#notice")).to_be_hidden()

    page.fill("#new-title", "Vector databases")
    page.click("#new-conversation button")
    expect(page.locator("#conversation-title")).to_have_text("Vector databases")
    page.click("#new-session button")
    page.click("#new-session button")
    columns = page.locator(".column")
    expect(columns).to_have_count(2)
    expect(page.locator("#conversation-meta")).to_contain_text("2 sessions")

    question = (
        "How do vector databases find the nearest neighbours of a query? Explain the index "
        "structures they use, such as HNSW graphs and inverted files, and what each of them "
        "trades between recall, speed and memory."
    )
    expected = "Echo: " + question
    reply = send(columns.nth(0), question)
    expect(reply).to_contain_text("Echo: How")
    partial = reply.inner_text()
    assert expected.startswith(partial) and len(partial) < len(expected), "it streams"
    expect(columns.nth(0).locator("button:text('Stop')")).to_be_enabled()
    expect(columns.nth(0).locator(".badge")).to_have_text("responding")
    expect(reply).to_have_text(expected)
    status = columns.nth(0).locator(".column-status")
    expect(status).to_contain_text("Finished: stop · ")
    expect(status).to_contain_text("completion = ")
    expect(status).to_contain_text("tokens (estimated)")
    expect(columns.nth(0).locator(".message.assistant .meta")).to_contain_text("stop · ")
    expect(columns.nth(0).locator("button:text('Stop')")).to_be_disabled()

    other = send(columns.nth(1), "And how are they different from a full-text index?")
    expect(other).to_have_text("Echo: And how are they different from a full-text index?")
    session_id = columns.nth(0).get_attribute("data-session-id") or ""
    conversation_id = page.url.split("#c=")[1]
    (stored,) = stored_replies(api, conversation_id, session_id)
    assert (stored["status"], stored["finish_reason"], stored["content"]) == (
        "completed",
        "stop",
        expected,
    )

    page.fill("#search", "neighb")  # as typed: a word cut short still finds
    expect(page.locator("#conversations mark")).to_have_text(["neighbours"])
    expect(page.locator("#conversations li")).to_have_count(1)
    page.locator("#search").blur()
    # The org_id and token are new on every run: emptied (the page only reads them on
    # Connect), and the page shows no other id, and times as "just now". (Screenshot options
    # that inject a style, such as hiding the caret, are refused by the page's CSP.)
    page.fill("#token", "")
    page.fill("#org", "")
    page.locator("#org").blur()
    save_screenshot(page.screenshot(animations="disabled"), page.inner_text("body"))


FINGERPRINT = b"tEXtplayground-fingerprint\0"


def save_screenshot(png: bytes, shown: str) -> None:
    """docs/playground.png, which README shows, rewritten only when what it shows may have
    changed: the playground's files or the page's text.

    Chromium's rendering differs by a few anti-aliased pixels from run to run, so the bytes
    cannot tell; a fingerprint of the files and the text is kept in the PNG (a tEXt chunk).
    """
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    digest = hashlib.sha256(shown.encode())
    for name in sorted(PLAYGROUND_ASSETS) + ["index.html"]:
        digest.update(PLAYGROUND.joinpath(name).read_bytes())
    fingerprint = digest.hexdigest().encode()
    if SCREENSHOT.exists():
        kept = SCREENSHOT.read_bytes()
        at = kept.find(FINGERPRINT)
        if at != -1 and kept[at + len(FINGERPRINT) :].startswith(fingerprint):
            return
    typed = FINGERPRINT + fingerprint  # the chunk's type and data
    chunk = struct.pack(">I", len(typed) - 4) + typed + struct.pack(">I", zlib.crc32(typed))
    after_header = 8 + 25  # the signature, then IHDR: length, type, 13 bytes, CRC
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(png[:after_header] + chunk + png[after_header:])


def test_the_list_pages_and_searches_as_you_type(
    page: Page, served: Served, api: httpx.Client
) -> None:
    for n in range(PAGE_SIZE + 1):
        created(api, "/api/conversation/create", {"title": f"Filler {n}"})
    created(api, "/api/conversation/create", {"title": "Zebra crossings"})
    connect(page, served)
    items = page.locator("#conversations li")
    expect(items).to_have_count(PAGE_SIZE)
    expect(items.first).to_contain_text("Zebra crossings")  # newest activity first
    expect(page.locator("#page-label")).to_have_text(f"1–{PAGE_SIZE}")
    expect(page.locator("#newer")).to_be_disabled()
    page.click("#older")
    expect(page.locator("#page-label")).to_contain_text(f"{PAGE_SIZE + 1}–")
    expect(page.locator("#newer")).to_be_enabled()

    page.locator("#search").press_sequentially("zeb", delay=30)
    expect(items).to_have_count(1)
    expect(page.locator("#conversations mark")).to_have_text(["Zebra"])
    expect(page.locator("#page-label")).to_have_text("1–1")  # a search starts at its page 1
    page.fill("#search", "zz")
    expect(page.locator("#list-status")).to_have_text("Nothing matches “zz”.")
    page.fill("#search", '"')  # no word in it: the API's 400, in words, naming the field
    expect(page.locator("#list-status")).to_contain_text("Bad request (400, invalid_field): q: ")
    page.fill("#search", "")
    expect(items).to_have_count(PAGE_SIZE)


def test_a_reply_goes_on_streaming_after_a_refresh(
    page: Page, served: Served, api: httpx.Client
) -> None:
    conversation_id, session_id, column = one_session_open(page, served, api, "Refreshed mid-reply")
    question = words(60)
    reply = send(column, question)
    expect(reply).to_contain_text("word3 ")

    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request) if "/api/" in request.url else None)
    page.reload()
    column = page.locator(f".column[data-session-id='{session_id}']")
    reply = column.locator(".message.assistant .text")
    expect(reply).to_have_count(1)
    expect(reply).to_have_text("Echo: " + question, timeout=15_000)
    expect(column.locator(".column-status")).to_contain_text("Finished: stop")

    streams = [r for r in sent if "/api/conversation/stream" in r.url]
    (attached,) = [r for r in streams if r.method == "GET"]  # no second POST: no second message
    assert len(streams) == 1, [r.url for r in streams]
    resumed_after = int(attached.headers["last-event-id"])
    assert 0 < resumed_after < len("Echo: " + question), "re-attached mid-reply"
    assert attached.url.count("message_id=") == 1
    (stored,) = stored_replies(api, conversation_id, session_id)
    assert (stored["status"], stored["content"]) == ("completed", "Echo: " + question)


def test_a_message_still_waiting_its_turn_is_followed_after_a_refresh(
    page: Page, served: Served, api: httpx.Client
) -> None:
    conversation_id, session_id, column = one_session_open(
        page, served, api, "Queued, then refreshed"
    )
    busy = {"chat_session_id": session_id, "message": words(40)}
    with api.stream("POST", "/api/conversation/stream_chat", json=busy) as first:
        assert first.status_code == 200
        sent: list[Request] = []
        page.on("request", lambda r: sent.append(r) if "stream_chat" in r.url else None)
        send(column, "my turn next")  # enqueued: no `start` before the first reply ends
        expect(column.locator(".column-status")).to_have_text("Sending…")
        page.reload()
        column = page.locator(f".column[data-session-id='{session_id}']")
        expect(column.locator(".message.assistant .text").last).to_have_text(
            "Echo: my turn next", timeout=15_000
        )
    expect(column.locator(".column-status")).to_contain_text("Finished: stop")
    # Sent again after the reload with the same Idempotency-Key: the same reply, followed.
    keys = [r.headers["idempotency-key"] for r in sent]
    assert len(keys) == 2 and keys[0] == keys[1], keys
    found = api.get("/api/conversation/messages", params={"conversation_id": conversation_id})
    questions = [m["content"] for m in found.json()["messages"] if m["role"] == "user"]
    assert questions == [busy["message"], "my turn next"], "stored once"
    expect(column.locator(".message.user")).to_have_count(2)


def test_a_reply_sent_elsewhere_is_followed_live_when_its_conversation_opens(
    page: Page, served: Served, api: httpx.Client
) -> None:
    conversation_id, (session_id,) = conversation_with_sessions(api, "Sent by another client")
    question = words(40)
    body = {"chat_session_id": session_id, "message": question}
    with api.stream("POST", "/api/conversation/stream_chat", json=body) as elsewhere:
        assert elsewhere.status_code == 200
        column = open_conversation(page, served, conversation_id, session_id)
        reply = column.locator(".message.assistant .text")
        expect(column.locator(".badge")).to_have_text("responding")
        expect(reply).to_have_text("Echo: " + question)
    expect(column.locator(".column-status")).to_contain_text("Finished: stop")
    expect(column.locator(".message")).to_have_count(2)


def test_stop_cancels_the_reply_and_it_is_stored_cancelled(
    page: Page, served: Served, api: httpx.Client
) -> None:
    conversation_id, session_id, column = one_session_open(page, served, api, "Stopped")
    question = words(80)
    reply = send(column, question)
    expect(reply).to_contain_text("word2 ")
    column.locator("button:text('Stop')").click()
    expect(column.locator(".column-status")).to_contain_text("Finished: cancelled")
    expect(column.locator("button:text('Send')")).to_be_enabled()
    shown = reply.inner_text()
    assert ("Echo: " + question).startswith(shown) and len(shown) < len("Echo: " + question)

    (stored,) = stored_replies(api, conversation_id, session_id)
    assert (stored["status"], stored["finish_reason"]) == ("cancelled", "cancelled")
    assert stored["content"] == shown, "stored as it was shown"


def test_a_429_is_shown_as_a_readable_message(
    page: Page, served: Served, api: httpx.Client
) -> None:
    conversation_id, (*busy, mine) = conversation_with_sessions(
        api, "Too many streams", MAX_STREAMS + 1
    )
    column = open_conversation(page, served, conversation_id, mine)
    with ExitStack() as streams:
        for session_id in busy:  # long replies whose streams stay open: the org's cap
            body = {"chat_session_id": session_id, "message": words(500)}
            opened = streams.enter_context(
                api.stream("POST", "/api/conversation/stream_chat", json=body)
            )
            assert opened.status_code == 200
        send(column, "one more")
        status = column.locator(".column-status")
        expect(status).to_contain_text("Too many requests (429, rate_limited): this organisation")
        expect(status).to_contain_text(f"already has {MAX_STREAMS} streams open")
        expect(status).to_contain_text("Retry after 1 s.")
        expect(status).to_contain_text("Request id: ")
        expect(status).to_have_class("column-status error")
        # Nothing was stored: the message is given back to send again.
        expect(column.locator("textarea")).to_have_value("one more")
        expect(column.locator(".message")).to_have_count(0)
        for session_id in busy:
            api.post("/api/conversation/cancel", json={"chat_session_id": session_id})
    assert stored_replies(api, conversation_id, mine) == []


def test_archive_moves_the_conversation_out_of_the_list_and_back(
    page: Page, served: Served, api: httpx.Client
) -> None:
    conversation_id, _ = conversation_with_sessions(api, "Old plans")
    connect(page, served)
    item = page.locator(f"#conversations li[data-conversation-id='{conversation_id}']")
    item.locator("button").click()
    expect(page.locator("#archive")).to_have_text("Archive")
    page.click("#archive")
    expect(page.locator("#archive")).to_have_text("Unarchive")
    expect(item).to_have_count(0)  # the list shows unarchived conversations by default
    stored = api.get(
        "/api/conversation/get_with_sessions", params={"conversation_id": conversation_id}
    )
    assert stored.json()["is_archived"] is True, stored.text

    page.select_option("#archived-filter", "true")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("archived")
    page.click("#archive")  # the conversation is still open: unarchive it
    expect(page.locator("#archive")).to_have_text("Archive")
    expect(item).to_have_count(0)  # gone from the archived list
    stored = api.get(
        "/api/conversation/get_with_sessions", params={"conversation_id": conversation_id}
    )
    assert stored.json()["is_archived"] is False, stored.text
