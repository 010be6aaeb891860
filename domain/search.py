"""Searching conversations: what a user may type, how words compare, and snippets.

A query is a list of terms, all of which must match: plain words (`vector databases`),
quoted phrases (`"vector databases"`: the words next to each other, in that order), and
prefixes (`data*`: any word that begins so; after a phrase, `"vector data"*`, its last word).
A word is a run of letters and digits; everything else (punctuation, operators such as
`- + | ( ) : ^`, symbols, emoji, NUL) only separates words, and AND, OR, NOT and NEAR are words
like any other. Words compare without regard to case, to the accents of Latin letters (é is
e, but ø stays ø) or to a Greek final sigma. So any text is either a query with at least one
word, or refused with an InvalidField naming `q`.

A conversation matches when its title, or one of its messages (not a reply still being
written), holds every term. The stores find and rank the matches (ports.storage); the
snippets are made here, from the best matching message, the same way for every store.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from uuid import UUID

import attrs

from conversation_service.domain.errors import InvalidField
from conversation_service.domain.model import Conversation

FIELD = "q"
MAX_QUERY_CHARS = 256
MAX_QUERY_WORDS = 16
# `a*` would match a good part of every language's words: the index reads them all.
MIN_PREFIX_CHARS = 2
MATCHED_IDS = 20  # the matching messages' ids a result lists at most (and counts them all)
SNIPPET_CHARS = 160  # the text a snippet shows at most, besides its "…" marks
ELLIPSIS = "…"

# Python's \w less "_": letters (L*) and digits (N*), as SQLite FTS5's unicode61 tokenizer
# reads them (its token characters are L* N* Co).
_WORD = re.compile(r"[^\W_]+")
# What remains of a Latin letter's accents after its canonical decomposition.
_LATIN_MARKS = re.compile(r"([A-Za-z])[\u0300-\u036f]+")
_SPACES = re.compile(r"\s+")


def fold(word: str) -> str:
    """A word as words compare: lower case, without the accents of Latin letters, with a
    final sigma as sigma (as FTS5's `unicode61 remove_diacritics 2` folds them)."""
    if word.isascii():
        return word.lower()
    text = _LATIN_MARKS.sub(r"\1", unicodedata.normalize("NFD", word.lower()))
    return unicodedata.normalize("NFC", text).replace("ς", "σ")


@attrs.frozen(kw_only=True)
class Term:
    """One thing every match must hold: a word, or words in a row (a phrase)."""

    words: tuple[str, ...]  # as typed, each a run of letters and digits
    prefix: bool = False  # the last word matches every word that begins with it
    folded: tuple[str, ...] = attrs.field(init=False)

    @folded.default
    def _fold(self) -> tuple[str, ...]:
        return tuple(fold(word) for word in self.words)

    def __str__(self) -> str:
        text = " ".join(self.words)
        text = f'"{text}"' if len(self.words) > 1 else text
        return text + ("*" if self.prefix else "")


@attrs.frozen(kw_only=True)
class SearchQuery:
    """What to search for: terms that must all match."""

    terms: tuple[Term, ...]

    def __str__(self) -> str:
        """The query in its own syntax, as the service read it."""
        return " ".join(str(term) for term in self.terms)


def parse_query(text: str | None) -> SearchQuery:
    """The query `text` says; InvalidField naming `q` when there is nothing to search for,
    too much of it, or a prefix too short to look up."""
    if text is None or text == "":
        raise InvalidField(FIELD, "required query parameter is missing")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidField(FIELD, f"must be at most {MAX_QUERY_CHARS} characters, got {len(text)}")
    if "\x00" in text:
        raise InvalidField(FIELD, "must not contain NUL characters")
    terms: list[Term] = []
    for term in _terms(text):
        if term.prefix and len(term.folded[-1]) < MIN_PREFIX_CHARS:
            raise InvalidField(
                FIELD,
                f"a word ending in * needs at least {MIN_PREFIX_CHARS} letters or digits "
                f"before the * (got {term.words[-1]}*)",
            )
        if all((t.folded, t.prefix) != (term.folded, term.prefix) for t in terms):
            terms.append(term)
    if not terms:
        raise InvalidField(FIELD, "must contain a word (letters or digits) to search for")
    words = sum(len(term.words) for term in terms)
    if words > MAX_QUERY_WORDS:
        raise InvalidField(FIELD, f"must have at most {MAX_QUERY_WORDS} words, got {words}")
    return SearchQuery(terms=tuple(terms))


def _terms(text: str) -> Iterator[Term]:
    # Quotes alternate: even pieces are outside, odd ones inside a phrase; an unclosed
    # quote's phrase runs to the end of the text.
    pieces = text.split('"')
    for index, piece in enumerate(pieces):
        words = list(_WORD.finditer(piece))
        if not words:
            continue
        if index % 2 == 0:
            for word in words:
                yield Term(words=(word.group(),), prefix=_starred(piece, word.end()))
        else:
            last = words[-1]
            closed = index < len(pieces) - 1
            after_quote = closed and pieces[index + 1].startswith("*")
            prefix = _starred(piece, last.end()) or after_quote
            yield Term(words=tuple(word.group() for word in words), prefix=prefix)


def _starred(piece: str, end: int) -> bool:
    return piece.startswith("*", end)


# -- matching, as the in-memory store does it -------------------------------------------------
@attrs.frozen
class _Word:
    start: int
    end: int
    folded: str


def _words(text: str) -> list[_Word]:
    return [_Word(m.start(), m.end(), fold(m.group())) for m in _WORD.finditer(text)]


def _occurrences(words: list[_Word], term: Term) -> Iterator[tuple[int, int]]:
    """(first, last) word indexes of each place `term` matches, in text order."""
    size = len(term.folded)
    for first in range(len(words) - size + 1):
        for offset, wanted in enumerate(term.folded):
            found = words[first + offset].folded
            is_last = offset == size - 1
            if not (found == wanted or (is_last and term.prefix and found.startswith(wanted))):
                break
        else:
            yield first, first + size - 1


def relevance(text: str, query: SearchQuery) -> float | None:
    """None unless `text` holds every term; else how dense the terms are in it (their
    occurrences over its words): more often in a shorter text is more relevant."""
    words = _words(text)
    found = 0
    for term in query.terms:
        count = sum(1 for _ in _occurrences(words, term))
        if not count:
            return None
        found += count
    return found / len(words)


# -- snippets ------------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class SnippetPart:
    """A piece of a snippet's text; `highlight` when it is a match of the query."""

    text: str
    highlight: bool


@attrs.frozen(kw_only=True)
class Snippet:
    """A short piece of a matching message (or of the title, when only it matched) with the
    query's matches marked: its parts, joined, are the text shown."""

    message_id: UUID | None  # None: the conversation's title
    parts: tuple[SnippetPart, ...]


@attrs.frozen(kw_only=True)
class SearchResult:
    """A conversation that matches a query, how, and where."""

    conversation: Conversation
    title_matches: bool
    message_count: int  # how many of its messages match
    message_ids: tuple[UUID, ...]  # the first MATCHED_IDS of those, oldest first
    snippet: Snippet


def snippet_parts(
    text: str, query: SearchQuery, *, width: int = SNIPPET_CHARS
) -> tuple[SnippetPart, ...]:
    """At most `width` characters of `text` where the most matches of the query's terms fit
    (the first such place), a few words before them included, their matches highlighted;
    runs of whitespace shown as one space, and "…" where text was left out. Text without a
    match (the engines may tell words apart a little differently) gives its beginning,
    nothing highlighted."""
    words = _words(text)
    spans = _spans(words, query)
    start, end = _window(text, words, spans, width)
    parts: list[SnippetPart] = []
    if text[:start].strip():
        parts.append(SnippetPart(text=ELLIPSIS, highlight=False))
    at = start
    for first, last in spans:
        if last <= start or first >= end:
            continue
        first, last = max(first, start), min(last, end)
        if first > at:
            parts.append(SnippetPart(text=text[at:first], highlight=False))
        parts.append(SnippetPart(text=text[first:last], highlight=True))
        at = last
    if at < end:
        parts.append(SnippetPart(text=text[at:end], highlight=False))
    if text[end:].strip():
        parts.append(SnippetPart(text=ELLIPSIS, highlight=False))
    return _tidy(parts)


def _spans(words: list[_Word], query: SearchQuery) -> list[tuple[int, int]]:
    """The character spans of every match of any term, merged where they overlap."""
    found = sorted(
        (words[first].start, words[last].end)
        for term in query.terms
        for first, last in _occurrences(words, term)
    )
    merged: list[tuple[int, int]] = []
    for first, last in found:
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def _window(
    text: str, words: list[_Word], spans: list[tuple[int, int]], width: int
) -> tuple[int, int]:
    """Where the snippet starts and ends in `text`."""
    if not spans:
        return _trimmed(text, words, 0, width)
    # The first match from which the most matches fit in the width (of the first 200).
    best, most = spans[0], 0
    for index, span in enumerate(spans[:200]):
        fit = 0
        for other in spans[index:]:
            if other[1] > span[0] + width:
                break
            fit += 1
        if fit > most:
            best, most = span, fit
    # A few words before it, for context.
    lead = max(0, best[0] - width // 4)
    start = next((w.start for w in words if w.start >= lead), best[0])
    return _trimmed(text, words, min(start, best[0]), width)


def _trimmed(text: str, words: list[_Word], start: int, width: int) -> tuple[int, int]:
    end = min(len(text), start + width)
    if end < len(text):
        # End after a whole word if one ends in the window past its first one; else cut.
        inside = [w.end for w in words if start < w.end <= end]
        if len(inside) > 1:
            end = inside[-1]
    while start < end and text[start].isspace():
        start += 1
    return start, max(start, end)


def _tidy(parts: list[SnippetPart]) -> tuple[SnippetPart, ...]:
    tidy: list[SnippetPart] = []
    for part in parts:
        shown = _SPACES.sub(" ", part.text)
        if not shown:
            continue
        if tidy and tidy[-1].highlight == part.highlight:
            tidy[-1] = SnippetPart(text=tidy[-1].text + shown, highlight=part.highlight)
        else:
            tidy.append(SnippetPart(text=shown, highlight=part.highlight))
    if tidy and not tidy[-1].highlight:
        tidy[-1] = SnippetPart(text=tidy[-1].text.rstrip(), highlight=False)
        if not tidy[-1].text:
            tidy.pop()
    return tuple(tidy)
