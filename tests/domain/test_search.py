"""The search query's syntax and rules, how words compare, and snippets."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversation_service.domain.errors import InvalidField
from conversation_service.domain.search import (
    ELLIPSIS,
    MAX_QUERY_CHARS,
    SNIPPET_CHARS,
    Term,
    fold,
    parse_query,
    relevance,
    snippet_parts,
)


def shown(text: str, q: str) -> str:
    """The snippet of `text` for `q`, its highlighted parts in [brackets]."""
    parts = snippet_parts(text, parse_query(q))
    return "".join(f"[{p.text}]" if p.highlight else p.text for p in parts)


@pytest.mark.parametrize(
    ("q", "terms"),
    [
        ("vector databases", [Term(words=("vector",)), Term(words=("databases",))]),
        ('"vector databases"', [Term(words=("vector", "databases"))]),
        ("data*", [Term(words=("data",), prefix=True)]),
        ('"vector data"*', [Term(words=("vector", "data"), prefix=True)]),
        ('"vector data*"', [Term(words=("vector", "data"), prefix=True)]),
        ('"vector* data"', [Term(words=("vector", "data"))]),  # only the last word's * counts
        ('"unclosed phrase', [Term(words=("unclosed", "phrase"))]),
        ('"one"', [Term(words=("one",))]),
        ('""   ""', None),
        ("a-b c:d (e) f|g +h ^i", [Term(words=(w,)) for w in "abcdefghi"]),
        ("AND OR NOT NEAR", [Term(words=(w,)) for w in ("AND", "OR", "NOT", "NEAR")]),
        ("x Y x X", [Term(words=("x",)), Term(words=("Y",))]),  # the same word once
        ("naïve_cafe", [Term(words=("naïve",)), Term(words=("cafe",))]),  # _ separates
        ("🚀 東京タワー", [Term(words=("東京タワー",))]),
    ],
)
def test_what_a_query_says(q: str, terms: list[Term] | None) -> None:
    if terms is None:
        with pytest.raises(InvalidField):
            parse_query(q)
    else:
        assert list(parse_query(q).terms) == terms


@pytest.mark.parametrize(
    ("q", "reason"),
    [
        ("", "required query parameter is missing"),
        ("?!-", "must contain a word"),
        ("*", "must contain a word"),
        ("a*", "at least 2 letters or digits before the *"),
        ('"big a"*', "at least 2"),
        ("x\x00", "NUL"),
        ("x" * (MAX_QUERY_CHARS + 1), f"at most {MAX_QUERY_CHARS} characters"),
        (" ".join(f"w{n}" for n in range(17)), "at most 16 words"),
        ('"a b c d e f g h" "i j k l m n o p q"', "at most 16 words"),
    ],
)
def test_what_is_no_query_is_refused_naming_q(q: str, reason: str) -> None:
    with pytest.raises(InvalidField) as refused:
        parse_query(q)
    assert refused.value.field == "q" and reason in refused.value.reason


@given(st.text(max_size=300))
def test_any_text_is_a_query_of_words_or_refused(text: str) -> None:
    try:
        query = parse_query(text)
    except InvalidField as refused:
        assert refused.field == "q"
        return
    for term in query.terms:
        assert term.words and all(word.isalnum() for word in term.words)
        assert '"' not in str(term) or len(term.words) > 1
    assert parse_query(str(query)) == query  # it reads back as itself


@pytest.mark.parametrize(
    ("word", "folded"),
    [
        ("Vector", "vector"),
        ("CAFÉ", "cafe"),
        ("naïve", "naive"),
        ("Việt", "viet"),
        ("İstanbul", "istanbul"),
        ("Øre", "øre"),  # no accent: a letter of its own
        ("ŁÓDŹ", "łodz"),
        ("straße", "straße"),
        ("ΟΔΟΣ", "οδοσ"),  # final sigma as sigma
        ("Ελληνικά", "ελληνικά"),  # Greek accents stay (as FTS5 keeps them)
        ("МОСКВА", "москва"),
        ("東京", "東京"),
    ],
)
def test_words_fold_as_fts5_folds_them(word: str, folded: str) -> None:
    assert fold(word) == folded


def test_relevance_is_none_without_every_term_and_denser_is_higher() -> None:
    query = parse_query('vector "data base"*')
    assert relevance("a vector", query) is None
    assert relevance("vector and data basements", query) == pytest.approx(2 / 4)
    assert relevance("vector data base", query) == pytest.approx(2 / 3)
    assert relevance("Vector, vector: DATA-BASE", query) == pytest.approx(3 / 4)
    assert relevance("data vector base", query) is None  # not in a row


def test_a_snippet_marks_the_matches_where_most_of_them_are() -> None:
    filler = "lorem ipsum dolor sit amet " * 20
    text = f"vector once. {filler} the vector databases are here, vector again. {filler}"
    assert shown(text, "vector databases") == (
        f"{ELLIPSIS}amet lorem ipsum dolor sit amet the [vector] [databases] are here, [vector] "
        "again. lorem ipsum dolor sit amet lorem ipsum dolor sit amet lorem ipsum dolor sit "
        f"amet{ELLIPSIS}"
    )


def test_a_snippet_shows_a_short_text_whole_with_whitespace_as_one_space() -> None:
    assert shown("  \n How   do\tvector\n\ndatabases work?  ", '"vector databases"') == (
        "How do [vector databases] work?"
    )
    assert shown("a vector-database; vector/database", '"vector database"') == (
        "a [vector-database]; [vector/database]"
    )
    assert shown("Café ÜBER naïve", "cafe uber naive") == "[Café] [ÜBER] [naïve]"
    assert shown("Databases, databank", "data*") == "[Databases], [databank]"


def test_a_snippet_without_a_match_is_the_texts_beginning() -> None:
    assert shown("nothing to see " * 30, "vector").startswith("nothing to see nothing")
    assert "[" not in shown("nothing to see " * 30, "vector")


def test_a_snippet_of_a_huge_word_is_cut() -> None:
    assert shown("x" * 1000 + " vector", "vector") == f"{ELLIPSIS}[vector]"
    cut = shown("vector" + "x" * 1000, "vector*")
    assert cut == f"[vector{'x' * (SNIPPET_CHARS - 6)}]{ELLIPSIS}"


@given(
    text=st.text(max_size=600)
    | st.lists(st.sampled_from(["vector", "data", " ", "\n", "-", "é"])).map("".join),
    q=st.sampled_from(["vector", "data*", '"vector data"', "vector data", "x"]),
)
def test_a_snippet_is_short_made_of_the_text_and_marks_matches(text: str, q: str) -> None:
    query = parse_query(q)
    parts = snippet_parts(text, query)
    shown_text = "".join(part.text for part in parts)
    assert len(shown_text) <= SNIPPET_CHARS + 2 * len(ELLIPSIS)
    assert all(part.text for part in parts)
    assert shown_text.strip(ELLIPSIS).strip() in " ".join(text.split())
    matched = any(relevance(text, parse_query(str(term))) for term in query.terms)
    assert any(part.highlight for part in parts) == matched


@pytest.mark.parametrize(
    "q", ["", "!!", "   ", "a*", '"*"', "x" * 257, "a\x00b", " ".join(f"w{n}" for n in range(17))]
)
def test_a_text_with_nothing_to_search_is_refused_naming_q(q: str) -> None:
    with pytest.raises(InvalidField) as refused:
        parse_query(q)
    assert refused.value.field == "q"


def test_the_query_reads_back_in_its_own_syntax() -> None:
    assert str(parse_query('  Vector, "data  base"* -x AND "unclosed phrase')) == (
        'Vector "data base"* x AND "unclosed phrase"'
    )
    assert str(parse_query('vector VECTOR "vector" vect* data* "ab"*')) == "vector vect* data* ab*"
    assert attrs.evolve(parse_query("a b")).terms[1].words == ("b",)
