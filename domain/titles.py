"""Titles the service gives conversations created without one.

After a conversation's first reply, a title model (the operator's choice, `[titles]` in the
model registry) is asked for a short title; without one, with echo, or when it fails, the
title is the first words of the first user message. A title the user set is never replaced:
the store writes a generated title only over no title at all.
"""

from __future__ import annotations

import re

from conversation_service.domain.context import PromptMessage

TITLE_MAX_CHARS = 80  # a generated title's most characters (and at most max_title_chars)
FIRST_WORDS = 8  # the fallback title: this many words of the first user message at most
PROMPT_TEXT_CHARS = 2_000  # of each message shown to the title model

TITLE_INSTRUCTIONS = (
    "You name conversations. Reply with a short title (at most six words) for the "
    "conversation below, in its language. Reply with the title only: no quotes, no "
    "final punctuation, no explanation."
)

_ELLIPSIS = "\u2026"
_SPACES = re.compile(r"\s+")
_LABEL = re.compile(r"^(title|titre|titel|t\u00edtulo)\s*:\s*", re.IGNORECASE)
_WRAPPING = "\"'`*_#\u201c\u201d\u2018\u2019\u00ab\u00bb "
_TRAILING = ".!;:,"


def title_prompt(user_text: str, reply_text: str | None) -> tuple[PromptMessage, ...]:
    """What the title model is shown: the instructions, then the first exchange (the user's
    message, and the reply when there is one), each cut to PROMPT_TEXT_CHARS."""
    shown = f"User: {user_text[:PROMPT_TEXT_CHARS]}"
    if reply_text:
        shown += f"\n\nAssistant: {reply_text[:PROMPT_TEXT_CHARS]}"
    return (
        PromptMessage(role="system", content=TITLE_INSTRUCTIONS),
        PromptMessage(role="user", content=shown),
    )


def clean_title(text: str, max_chars: int = TITLE_MAX_CHARS) -> str | None:
    """The title in a model's answer: its first non-empty line, without a `Title:` label,
    quotes or final punctuation, at most `max_chars` (cut at a word); None if nothing is left."""
    line = next((line for line in text.replace("\x00", "").splitlines() if line.strip()), "")
    line = _LABEL.sub("", _SPACES.sub(" ", line).strip())
    line = line.strip(_WRAPPING).rstrip(_TRAILING).strip(_WRAPPING)
    return _cut(line, max_chars) or None


def first_words(text: str, max_chars: int = TITLE_MAX_CHARS, words: int = FIRST_WORDS) -> str:
    """The first `words` words of `text`, at most `max_chars` characters, and an ellipsis
    when something was left out. A text of whitespace only gives the ellipsis alone."""
    found = text.replace("\x00", "").split()
    title = " ".join(found[:words])
    cut = _cut(title, max_chars - 1) if len(title) > max_chars else title
    if len(found) > words or cut != title:
        return (cut.rstrip(_TRAILING) + _ELLIPSIS)[:max_chars]
    return title or _ELLIPSIS


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    head = text[: max_chars + 1]
    at_word = head.rsplit(" ", 1)[0] if " " in head else ""
    return (at_word or text[:max_chars]).rstrip()
