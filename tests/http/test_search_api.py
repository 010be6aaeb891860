"""GET /api/conversation/search over real HTTP, on SQLite and on PostgreSQL: what it finds and
in what order, its snippets, its tenancy, and every hostile query answered or refused."""

from __future__ import annotations

from typing import Any

from conversation_service.domain.model import AccessRole
from tests.http.conftest import Api, Tenant
from tests.http.test_openapi import Contract

SEARCH = "/api/conversation/search"


async def search(api: Api, q: str, who: Tenant | None = None, **params: str) -> dict[str, Any]:
    response = await api.get(SEARCH, who, q=q, **params)
    assert response.status_code == 200, response.text
    return response.json()


def titles(found: dict[str, Any]) -> list[str]:
    return [result["conversation"]["title"] for result in found["results"]]


def shown(snippet: dict[str, Any]) -> str:
    """A snippet as text, its highlighted parts in [brackets]."""
    return "".join(f"[{p['text']}]" if p["highlight"] else p["text"] for p in snippet["parts"])


async def test_search_finds_titles_and_messages_best_first_with_snippets(api: Api) -> None:
    contract = Contract((await api.client.get("/openapi.json")).json())
    await api.conversation("Vector database planning")
    chat = await api.conversation("Weekly chat")
    other = await api.conversation("Gardening")
    session = await api.session(chat["id"])
    events = await api.stream(session["id"], "How do vector databases store embeddings?")
    reply_id = events[0][2]["message_id"]
    garden = await api.session(other["id"])
    await api.stream(garden["id"], "Tomatoes need sun; no vectors here.")

    response = await api.get(SEARCH, q="Vector DATABASES")
    found = contract.check(response, SEARCH)
    assert found["query"] == "Vector DATABASES"
    assert int(response.headers["X-RateLimit-Remaining"]) >= 0
    assert titles(found) == ["Weekly chat"]  # "database" is not "databases": no stemming
    (result,) = found["results"]
    messages = (await api.get("/api/conversation/messages", conversation_id=chat["id"])).json()
    ids = [m["id"] for m in messages["messages"]]
    assert result["message_ids"] == ids and result["message_count"] == 2  # the echo too
    assert result["snippet"]["message_id"] in ids and result["title_matches"] is False
    assert "[vector] [databases]" in shown(result["snippet"]).lower()

    # A title match comes first; a prefix; a phrase; accents and case do not matter.
    found = await search(api, "vect* DÁTABASE*")
    assert titles(found) == ["Vector database planning", "Weekly chat"]
    assert found["results"][0]["title_matches"] is True
    assert found["results"][0]["snippet"]["message_id"] is None  # the title's
    assert shown(found["results"][0]["snippet"]) == "[Vector] [database] planning"
    assert found["query"] == "vect* DÁTABASE*"
    phrase = await search(api, '"databases store"')
    assert titles(phrase) == ["Weekly chat"]
    assert phrase["results"][0]["snippet"]["message_id"] in ids
    assert titles(await search(api, '"store databases"')) == []
    reply = await search(api, "echo embeddings")  # only the reply says "Echo"
    assert reply["results"][0]["message_ids"] == [reply_id]

    # Paging: limit, offset, has_more ("vectors" is no "vector", but begins with "vect").
    assert len(titles(await search(api, "vector"))) == 2
    every = titles(await search(api, "vect*"))
    assert len(every) == 3 and every[0] == "Vector database planning"
    pages = [await search(api, "vect*", limit="1", offset=str(n)) for n in range(3)]
    assert [page["has_more"] for page in pages] == [True, True, False]
    assert [title for page in pages for title in titles(page)] == every


async def test_archived_conversations_are_searchable_and_filtered_like_the_list(api: Api) -> None:
    old = await api.post("/api/conversation/create", {"title": "Budget 2025", "is_archived": True})
    assert old.status_code == 201
    await api.conversation("Budget 2026")
    assert sorted(titles(await search(api, "budget"))) == ["Budget 2025", "Budget 2026"]
    assert titles(await search(api, "budget", is_archived="true")) == ["Budget 2025"]
    assert titles(await search(api, "budget", is_archived="false")) == ["Budget 2026"]
    viewer = await api.tenant(AccessRole.VIEWER, org_id=api.a.org_id)
    assert len(titles(await search(api, "budget", viewer))) == 2  # a viewer may search


async def test_two_orgs_sharing_words_only_ever_find_their_own(api: Api) -> None:
    ids: dict[Any, set[str]] = {}
    for who in (api.a, api.b):
        conversation = await api.conversation("Shared roadmap", who)
        session = await api.session(conversation["id"], who=who)
        await api.stream(session["id"], "shared roadmap milestones", who)
        ids[who.org_id] = {conversation["id"]}
    ids[api.b.org_id].add((await api.conversation("Shared secrets", api.b))["id"])
    for who in (api.a, api.b):
        for q in ("shared roadmap", "shared", "milestones", "roadmap*", "secrets", "echo"):
            found = await search(api, q, who)
            assert {r["conversation"]["id"] for r in found["results"]} <= ids[who.org_id]
            assert all(r["message_count"] <= 2 for r in found["results"])  # its own two
    assert titles(await search(api, "secrets", api.a)) == []
    assert titles(await search(api, "secrets", api.b)) == ["Shared secrets"]
    # Another organisation's org_id is 403, whatever it holds.
    refused = await api.get(SEARCH, api.a, q="shared", org_id=str(api.b.org_id))
    assert refused.status_code == 403


HOSTILE = [
    # quotes, unbalanced or not, and the engines' own operators, as words or separators
    '"', '""', '"""', "'", "''", "\\", '"vector', 'vector"', '"a" "b', "' OR 1=1 --",
    "'; DROP TABLE messages; --", "a AND b", "a OR b", "NOT a", "NEAR(a b, 2)", "a NEAR b",
    "title:vector", "content:x", "^vector", "vector^", "-vector", "+vector", "a & !b", "a | b",
    "a <-> b", "a:*", "a:* & b", "(a", "a)", "{a b}", "[a]", "a*b", "**", "*", "a*", "ab*",
    '"ab"*', '"a b*"', "*ab", "col : a", "\t\n\r", "%", "_", "a_b", "100%", "x" * 256,
    " ".join(["w"] * 16), " ".join(f"w{i}" for i in range(17)),
    # unicode: emoji, right-to-left, combining marks, CJK, an NBSP, a BOM, fullwidth letters
    "🚀", "vector 🚀 db", "שלום עולם", "ä", "a\u0308", "東京", "\u00a0", "\ufeff", "ｖｅｃｔｏｒ",
    "𝔳𝔢𝔠𝔱𝔬𝔯", "Ω≈ç√∫", "\u202e", "x\u200by",
]  # fmt: skip


async def test_hostile_queries_are_answered_or_refused_naming_q(api: Api) -> None:
    conversation = await api.conversation("vector a b w")
    session = await api.session(conversation["id"])
    await api.stream(session["id"], "a b and ab w vector 東京 ä")
    for q in HOSTILE:
        response = await api.get(SEARCH, q=q)
        assert response.status_code in (200, 400), (q, response.text)
        if response.status_code == 400:
            assert response.json()["error"]["field"] == "q", (q, response.text)
    # Bytes no text decodes to (a NUL, a lone surrogate, invalid UTF-8), and too long.
    for raw in ("%00", "a%00b", "%ED%A0%80", "%FF%FE", "x" * 257, "%C0%80"):
        response = await api.client.get(
            f"{SEARCH}?org_id={api.a.org_id}&q={raw}", headers=api.a.auth
        )
        assert response.status_code in (200, 400), (raw, response.text)
        if response.status_code == 400:
            assert response.json()["error"]["field"] == "q", (raw, response.text)
    for q, reason in (
        ("", "required"),
        ("!?", "must contain a word"),
        ("a*", "at least 2"),
        ("x" * 257, "at most 256"),
        (" ".join(f"w{i}" for i in range(17)), "at most 16 words"),
    ):
        response = await api.get(SEARCH, q=q)
        assert response.status_code == 400, q
        assert response.json()["error"]["field"] == "q" and reason in response.text, q
    missing = await api.client.get(SEARCH, params=api.a.q, headers=api.a.auth)
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "q"
    assert titles(await search(api, "' OR 1=1 --")) == []
    assert titles(await search(api, "a AND b")) == ["vector a b w"]  # AND is a word here
    assert (await api.get("/api/conversation/list")).status_code == 200
