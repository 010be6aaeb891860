"""Texts the service takes (titles, messages, system prompts) and the ones it refuses.

A text is taken when it is not blank (`str.strip()` leaves something), holds no NUL, and has
at most the limit's characters, counted as code points: an emoji outside the Basic
Multilingual Plane is one character, though JSON escapes it as two UTF-16 units. The edge
cases mixed in are the ones a real client sends: combining marks beside precomposed
letters, zero-width joiners, bidirectional controls, other whitespace than the space,
astral characters, line separators, CJK and Greek.
"""

from __future__ import annotations

import functools

from hypothesis import strategies as st

from conversation_service.domain.rules import InputLimits

LIMITS = InputLimits()
# Bytes a text may take in UTF-8, so that its body stays under the server's default cap on a
# body (256 KiB): at the limit, a text of 4-byte characters is shorter than the limit.
BODY_BUDGET = 200_000
_WIDE = ("x", "é", "\U0001f600", "東")  # 1, 2, 4 and 3 bytes in UTF-8


def _repeated(char: str, count: int) -> str:
    return char * min(count, BODY_BUDGET // len(char.encode()))


# Fragments that real clients send and naive code mishandles; each is a valid text alone.
UNICODE_EDGES = (
    "e\u0301",  # e + combining acute: NFD, beside the precomposed é
    "\u00e9",
    "\U0001f469\u200d\U0001f4bb",  # woman technologist: a ZWJ sequence
    "\U0001f1eb\U0001f1f7",  # a flag: two regional indicators
    "\u202eevil\u202c",  # a right-to-left override and its pop
    "\u05e9\u05dc\u05d5\u05dd",  # Hebrew, right to left
    "\ufeffBOM",  # a byte order mark inside the text
    "\U0001d518\U0001d52b\U0001d526",  # mathematical letters, outside the BMP
    "a\u3000b",  # an ideographic space inside
    "line\u2028separator",
    "tab\tand\r\nnewline",
    "東京タワー",
    "ΟΔΟΣ ελληνικά",
    "İstanbul ß",  # case mappings that change length
    "\U0010fffd",  # the last private-use code point
    "<script>alert(1)</script>",
    "'; DROP TABLE messages; --",
    '"quoted" \\ back\\slash',
    "{{template}} ${var} %s %n",
)


@functools.cache
def whitespace() -> str:
    """Every character `str.strip()` removes: a text of only these is blank."""
    return "".join(chr(code) for code in range(0x110000) if chr(code).isspace())


def stored_characters() -> st.SearchStrategy[str]:
    """Characters a stored text may hold: no surrogates (not Unicode text) and no NUL (a
    user's is refused, a model's replaced): everything else goes."""
    return st.characters(exclude_categories=["Cs"], exclude_characters="\x00")


def texts(max_size: int, *, min_size: int = 1) -> st.SearchStrategy[str]:
    """Texts the service takes, of `min_size` to `max_size` characters: arbitrary ones, the
    edge fragments above mixed in, and ones exactly at the limit (ASCII or astral)."""
    pieces = st.lists(
        st.sampled_from(UNICODE_EDGES) | st.text(stored_characters(), min_size=1, max_size=8),
        min_size=1,
        max_size=6,
    ).map("".join)
    arbitrary = st.text(stored_characters(), min_size=min_size, max_size=min(max_size, 80))
    drawn = (arbitrary | pieces).map(lambda text: text[:max_size])
    at_limit = st.sampled_from(_WIDE).map(lambda c: _repeated(c, max_size))
    return (drawn | at_limit).filter(lambda text: len(text) >= min_size and text.strip() != "")


def titles(limits: InputLimits = LIMITS) -> st.SearchStrategy[str]:
    return texts(limits.max_title_chars)


def message_texts(
    limits: InputLimits = LIMITS, *, max_size: int | None = None
) -> st.SearchStrategy[str]:
    """Messages; `max_size` keeps them shorter than the limit (a model's context may not
    hold 100,000 characters)."""
    return texts(min(max_size or limits.max_message_chars, limits.max_message_chars))


def system_prompts(limits: InputLimits = LIMITS) -> st.SearchStrategy[str]:
    return texts(limits.max_system_prompt_chars)


def words(max_words: int = 40, *, min_words: int = 1) -> st.SearchStrategy[str]:
    """Plain words with single spaces between them: a message whose reply streams word by
    word (the echo model's) and whose length says how long the reply takes."""
    word = st.text("abcdefghijklmnopqrstuvwxyzäöüß", min_size=1, max_size=8)
    return st.lists(word, min_size=min_words, max_size=max_words).map(" ".join)


# -- refused --------------------------------------------------------------------------------


def blank_texts() -> st.SearchStrategy[str]:
    """Empty or whitespace only (any of Unicode's): refused as "must not be empty"."""
    return st.just("") | st.text(st.sampled_from(whitespace()), min_size=1, max_size=5)


def texts_with_nul() -> st.SearchStrategy[str]:
    return st.tuples(texts(20), texts(20)).map(lambda pair: f"{pair[0]}\x00{pair[1]}")


def too_long(max_chars: int) -> st.SearchStrategy[str]:
    """One character (or a few) over `max_chars`, astral characters counted as one (each
    kind of character only while the text stays within BODY_BUDGET bytes)."""
    fits = [c for c in _WIDE if (max_chars + 3) * len(c.encode()) <= BODY_BUDGET]
    over = st.integers(min_value=1, max_value=3)
    return st.tuples(st.sampled_from(fits or ["x"]), over).map(
        lambda pair: pair[0] * (max_chars + pair[1])
    )


def refused_texts(max_chars: int) -> st.SearchStrategy[str]:
    """Every kind of text the service refuses where it takes texts up to `max_chars`."""
    return blank_texts() | texts_with_nul() | too_long(max_chars)


def with_lone_surrogate() -> st.SearchStrategy[str]:
    """A text holding an unpaired surrogate: JSON can escape one ("\\ud800"), but it is no
    Unicode text; the service refuses the whole body (field `body`)."""
    surrogate = st.integers(min_value=0xD800, max_value=0xDFFF).map(chr)
    return st.tuples(texts(10), surrogate).map("".join)
