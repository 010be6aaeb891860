"""Search, held to one contract by the in-memory store, SQLite (FTS5) and PostgreSQL (tsvector):
which conversations match, in what order where the engines' relevance agrees, what each
result lists, what a reply in progress shows, and that an organisation finds only its own."""

from __future__ import annotations

from typing import Any

from conversation_service.domain.model import MessageRole, MessageStatus
from conversation_service.domain.search import MATCHED_IDS, parse_query
from conversation_service.domain.session_machine import SessionInput
from conversation_service.testing.store_contract.base import ContractBase, Store


async def search(store: Store, org: Any, q: str, **options: Any) -> Any:
    page = await store.search_conversations(
        org.id,
        parse_query(q),
        is_archived=options.get("is_archived"),
        limit=options.get("limit", 100),
        offset=options.get("offset", 0),
    )
    return page


async def titles(store: Store, org: Any, q: str, **options: Any) -> list[str]:
    return [hit.conversation.title for hit in (await search(store, org, q, **options)).items]


class Corpus:
    """Conversations of one organisation, one session each, with the messages given; the
    same ones (the same ids) in each store given."""

    def __init__(self, store: Store, values: Any, org: Any, *more: Store) -> None:
        self.stores, self.values, self.org = (store, *more), values, org
        self.clock = 0

    async def conversation(self, title: str, *texts: str, archived: bool = False) -> Any:
        self.clock += 1
        conversation = self.values.conversation(
            self.org, title=title, created=self.clock, archived=archived
        )
        session = self.values.session(conversation, created=self.clock)
        messages = []
        for text in texts:
            self.clock += 1
            messages.append(self.values.message(session, content=text, created=self.clock))
        for store in self.stores:
            await store.add_conversation(conversation)
            await store.add_session(session)
            for message in messages:
                await store.add_message(message)
        return conversation, session, messages


async def new_org(store: Store, values: Any) -> Any:
    org = values.org()
    await store.add_org(org)
    return org


MATCHING = [
    # (query, the titles it finds, in any order)
    ("vector", {"Plans", "Notes"}),
    ("VECTOR Databases", {"Notes"}),
    ("databases vector", {"Notes"}),  # every word, anywhere, any order
    ('"vector databases"', {"Notes"}),
    ('"databases vector"', set()),  # a phrase: in a row, in order
    ('"how do vector"', {"Notes"}),
    ("vect*", {"Plans", "Notes", "Misc"}),  # Misc says "vectors"
    ('"vector data"*', {"Notes"}),
    ("vectors", {"Misc"}),  # no stemming
    ("cafe", {"Café"}),  # Latin accents do not count, either way
    ("CAFÉ", {"Café"}),
    ("uber", {"Café"}),
    ("Øre", {"Café"}),  # ø is a letter of its own (not o), in any case
    ("ore", set()),
    ("ελληνικά", {"Greek"}),  # Greek accents count; case and final sigma do not
    ("ΟΔΟΣ", {"Greek"}),
    ("οδοσ", {"Greek"}),
    ("москва", {"Greek"}),
    ("example", {"Misc"}),  # an e-mail address, a URL, a decimal are words and dots
    ("alice example com", {"Misc"}),
    ("14", {"Misc"}),
    ("bar", {"Misc"}),
    ("foo bar", {"Misc"}),
    ("AND", {"Misc"}),  # AND, OR, NOT are words like any other
    ("NOT vector", set()),
    ("plans", {"Plans"}),  # a title alone
    ("東京タワー", {"Misc"}),  # a run of CJK is a word; its start is a prefix
    ("東京*", {"Misc"}),
    ("東京", set()),
    ("nothing", set()),
]


async def _matching_corpus(store: Store, values: Any) -> Any:
    org = await new_org(store, values)
    corpus = Corpus(store, values, org)
    await corpus.conversation("Plans", "We talk about a vector index.")
    await corpus.conversation("Notes", "How do vector databases work?", "Unrelated text.")
    await corpus.conversation("Café", "Café au lait, ÜBER alles; øre.")
    await corpus.conversation("Greek", "Η ΟΔΟΣ, ελληνικά. МОСКВА!")
    await corpus.conversation(
        "Misc",
        "alice@example.com wrote 3.14 and foo-bar at https://example.com/path",
        "vectors, 東京タワー",
    )
    return org


class SearchContract(ContractBase):
    """search_conversations: what matches, in what order, what a result lists, scoping."""

    async def test_words_phrases_and_prefixes_match_as_the_domain_says(
        self, store: Store, values: Any
    ) -> None:
        org = await _matching_corpus(store, values)
        found = {q: set(await titles(store, org, q)) for q, _ in MATCHING}
        assert found == dict(MATCHING)

    async def test_title_matches_first_then_the_most_relevant_then_the_newest(
        self, store: Store, values: Any
    ) -> None:
        org = await new_org(store, values)
        corpus = Corpus(store, values, org)
        long = "a long message that mentions vector once among many other words here"
        await corpus.conversation("Vector title, old", "unrelated")
        await corpus.conversation("Tie, older", "vector databases")
        await corpus.conversation("Long", long)
        await corpus.conversation("Dense", "vector databases")
        await corpus.conversation("Tie, newer", "vector databases")
        await corpus.conversation("Vector title with a message", long)
        assert await titles(store, org, "vector") == [
            "Vector title with a message",  # titles first: the one with a matching message ahead
            "Vector title, old",
            "Tie, newer",  # equally relevant: the newest first
            "Dense",
            "Tie, older",
            "Long",  # the same one occurrence, in a longer message
        ]

    async def test_a_result_counts_its_matches_lists_the_first_and_points_at_the_best(
        self, store: Store, values: Any
    ) -> None:
        org = await new_org(store, values)
        corpus = Corpus(store, values, org)
        texts = [f"vector note number {n} with some more words to pad it out" for n in range(30)]
        texts[23] = "vector"  # the most relevant
        texts[5] = "no match here"
        _, _, messages = await corpus.conversation("Many", *texts)
        (hit,) = (await search(store, org, "vector")).items
        matching = [m.id for m in messages if m.content != "no match here"]
        assert hit.message_count == 29 and not hit.title_matches
        assert list(hit.message_ids) == matching[:MATCHED_IDS]
        assert hit.best is not None and hit.best.message_id == messages[23].id
        assert hit.best.content == "vector"

    async def test_the_best_of_equally_relevant_messages_is_the_earliest(
        self, store: Store, values: Any
    ) -> None:
        org = await new_org(store, values)
        _, _, messages = await Corpus(store, values, org).conversation(
            "Even", "same words", "x", "same words"
        )
        (hit,) = (await search(store, org, "same")).items
        assert hit.best is not None and hit.best.message_id == messages[0].id
        assert hit.message_ids == (messages[0].id, messages[2].id)

    async def test_a_title_alone_has_no_best_message(self, store: Store, values: Any) -> None:
        org = await new_org(store, values)
        await Corpus(store, values, org).conversation("Quarterly review", "nothing relevant")
        (hit,) = (await search(store, org, "quarterly")).items
        assert hit.title_matches and hit.message_count == 0
        assert hit.message_ids == () and hit.best is None

    async def test_pages_follow_the_order_and_say_whether_more_follow(
        self, store: Store, values: Any
    ) -> None:
        org = await new_org(store, values)
        corpus = Corpus(store, values, org)
        for n in range(5):
            await corpus.conversation(f"Topic {n}", "topic text")
        every = await titles(store, org, "topic")
        assert every == [f"Topic {n}" for n in (4, 3, 2, 1, 0)]
        pages = [await search(store, org, "topic", limit=2, offset=n) for n in (0, 2, 4, 6)]
        assert [[h.conversation.title for h in p.items] for p in pages] == [
            every[0:2], every[2:4], every[4:5], []
        ]  # fmt: skip
        assert [p.has_more for p in pages] == [True, True, False, False]

    async def test_archived_conversations_match_and_filter_like_the_list(
        self, store: Store, values: Any
    ) -> None:
        org = await new_org(store, values)
        corpus = Corpus(store, values, org)
        await corpus.conversation("Budget old", "budget", archived=True)
        await corpus.conversation("Budget new", "budget")
        assert set(await titles(store, org, "budget")) == {"Budget old", "Budget new"}
        assert await titles(store, org, "budget", is_archived=True) == ["Budget old"]
        assert await titles(store, org, "budget", is_archived=False) == ["Budget new"]

    async def test_another_orgs_matches_are_never_found_nor_counted(
        self, store: Store, values: Any
    ) -> None:
        ours, theirs = await new_org(store, values), await new_org(store, values)
        mine = Corpus(store, values, ours)
        other = Corpus(store, values, theirs)
        conversation, _, _ = await mine.conversation("Shared words", "shared words here")
        for n in range(3):
            await other.conversation("Shared words", "shared words here", f"shared words {n}")
        await other.conversation("Only theirs", "secret plans")
        hits = (await search(store, ours, "shared words")).items
        assert [(h.conversation.id, h.message_count) for h in hits] == [(conversation.id, 1)]
        assert await titles(store, ours, "secret") == []
        assert await titles(store, ours, "only") == []
        assert len(await titles(store, theirs, "shared")) == 3

    async def test_a_reply_is_found_once_it_ends_by_its_final_text(
        self, store: Store, values: Any
    ) -> None:
        org = await new_org(store, values)
        _, session, _ = await Corpus(store, values, org).conversation("Chat")
        user = values.message(session, content="tell me about gardens", created=10)
        reply = values.message(
            session, created=10, content="", role=MessageRole.ASSISTANT,
            status=MessageStatus.IN_PROGRESS, model_id=session.model_id,
        )  # fmt: skip
        responding = session.apply(SessionInput.SEND, values.at(10))
        await store.begin_reply(user, reply, responding, history_limit=0)
        flushed = reply.with_content("Tomatoes and drafts", values.at(11))
        await store.update_message(flushed)
        assert await titles(store, org, "tomatoes") == []  # being written: not yet
        assert await titles(store, org, "gardens") == ["Chat"]  # the user's message is
        done = flushed.finished(
            content="Tomatoes and basil", status=MessageStatus.COMPLETED, finish_reason="stop",
            usage=None, at=values.at(12),
        )  # fmt: skip
        await store.end_reply(done, responding.apply(SessionInput.FINISH, values.at(12)))
        (hit,) = (await search(store, org, "tomatoes basil")).items
        assert hit.message_ids == (reply.id,) and hit.best is not None
        assert hit.best.content == "Tomatoes and basil"
        assert await titles(store, org, "drafts") == []  # a flush's words, gone with it

    async def test_a_reply_stopped_by_a_crash_is_found_by_what_was_flushed(
        self, store: Store, values: Any
    ) -> None:
        org = await new_org(store, values)
        _, session, _ = await Corpus(store, values, org).conversation("Crashed")
        reply = values.message(
            session, created=10, content="", role=MessageRole.ASSISTANT,
            status=MessageStatus.IN_PROGRESS, model_id=session.model_id,
        )  # fmt: skip
        await store.add_message(reply)
        await store.update_message(reply.with_content("partial answer", values.at(11)))
        assert await titles(store, org, "partial") == []
        assert await store.recover_interrupted(values.at(12)) == 1
        (hit,) = (await search(store, org, "partial answer")).items
        assert hit.message_ids == (reply.id,)
