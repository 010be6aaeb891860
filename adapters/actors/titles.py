"""Titles for conversations created without one, written in the background after a reply.

Session actors tell the TitleWriter of every reply they store. For a conversation still
untitled, it asks the operator's title model (`[titles] model_id` in the registry) for a
title from the first exchange; with no title model, with echo, or when the model fails, times
out or answers nothing usable, the title is the first words of the first user message
(domain/titles.py). Whatever the reply's outcome (completed, failed, cancelled), the
conversation gets a title; if even that cannot be stored (storage down, a restart), the next
reply tries again. The store writes a generated title only over no title, so a title the user
set, before or meanwhile, is never replaced.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from uuid import UUID

import attrs
import trio

from conversation_service.adapters.llm.echo import ECHO_MODEL_ID
from conversation_service.domain.errors import DomainError
from conversation_service.domain.model import GenerationParams, Message, MessageRole, MessageStatus
from conversation_service.domain.titles import (
    TITLE_MAX_CHARS,
    clean_title,
    first_words,
    title_prompt,
)
from conversation_service.ports.language_model import ModelCatalog
from conversation_service.ports.storage import ConversationStore

log = logging.getLogger(__name__)

KNOWN_TITLED = 10_000  # conversations remembered as titled, so their replies cost no read


@attrs.frozen(kw_only=True)
class TitleSettings:
    """How conversations get their titles."""

    model_id: UUID | None = None  # a registry model; None (or echo): the first words
    max_chars: int = TITLE_MAX_CHARS  # at most the service's max_title_chars
    timeout: float = 30.0  # seconds the title model may take
    max_tokens: int = 32  # asked of the title model


class TitleWriter:
    """Titles untitled conversations after their replies, one task per conversation at a time."""

    def __init__(
        self,
        *,
        nursery: trio.Nursery,
        store: ConversationStore,
        catalog: ModelCatalog,
        settings: TitleSettings,
    ) -> None:
        self._nursery = nursery
        self._store = store
        self._catalog = catalog
        self._settings = settings
        self._titled: OrderedDict[UUID, None] = OrderedDict()
        self._working: set[UUID] = set()

    def reply_stored(self, reply: Message) -> None:
        """A reply of the conversation was stored: title it if it has no title yet."""
        conversation_id = reply.conversation_id
        if conversation_id in self._titled or conversation_id in self._working:
            return
        self._working.add(conversation_id)
        self._nursery.start_soon(
            self._title, reply.org_id, conversation_id, name=f"title-{conversation_id}"
        )

    async def _title(self, org_id: UUID, conversation_id: UUID) -> None:
        try:
            await self._write_title(org_id, conversation_id)
        except DomainError as error:  # storage unavailable: the next reply tries again
            log.warning("conversation %s: no title written: %s", conversation_id, error)
        except Exception:  # noqa: BLE001 - a bug here must not reach the actors' nursery
            log.exception("conversation %s: titling failed", conversation_id)
        finally:
            self._working.discard(conversation_id)

    async def _write_title(self, org_id: UUID, conversation_id: UUID) -> None:
        conversation = await self._store.get_conversation(org_id, conversation_id)
        if conversation is None or conversation.title is not None:
            self._known_titled(conversation_id)
            return
        first = await self._store.list_messages(org_id, conversation_id, limit=4, offset=0)
        user = next((m for m in first.items if m.role is MessageRole.USER), None)
        if user is None:
            return
        reply = next(
            (
                m
                for m in first.items
                if m.role is MessageRole.ASSISTANT
                and m.chat_session_id == user.chat_session_id
                and m.status is MessageStatus.COMPLETED
                and m.content
            ),
            None,
        )
        title = await self._ask_model(user.content, reply.content if reply else None)
        if title is None:
            title = first_words(user.content, self._settings.max_chars)
        await self._store.set_generated_title(org_id, conversation_id, title)
        self._known_titled(conversation_id)

    async def _ask_model(self, user_text: str, reply_text: str | None) -> str | None:
        """The title model's title, or None: none configured (or echo), or it failed."""
        settings = self._settings
        if settings.model_id is None or settings.model_id == ECHO_MODEL_ID:
            return None
        written: list[str] = []

        async def emit(chunk: str) -> None:
            written.append(chunk)

        try:
            model = self._catalog.language_model(settings.model_id)
            with trio.move_on_after(settings.timeout) as waited:
                await model.generate(
                    title_prompt(user_text, reply_text),
                    emit,
                    GenerationParams(max_tokens=settings.max_tokens),
                )
        except DomainError as error:  # ModelFailure, ModelNotFound
            log.warning("title model %s failed: %s", settings.model_id, error)
            return None
        if waited.cancelled_caught:
            log.warning("title model %s took over %s s", settings.model_id, settings.timeout)
            return None
        return clean_title("".join(written), settings.max_chars)

    def _known_titled(self, conversation_id: UUID) -> None:
        self._titled[conversation_id] = None
        self._titled.move_to_end(conversation_id)
        while len(self._titled) > KNOWN_TITLED:
            self._titled.popitem(last=False)
