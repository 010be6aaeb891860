"""An app that embeds the Conversation Service's library: one conversation per topic, questions
asked of a model in it, answers read from the reply's events."""

from __future__ import annotations

from uuid import UUID

from conversation_service.client import Client
from conversation_service.domain.model import ChatSession, Principal
from conversation_service.domain.replies import ReplyContent, ReplyError
from conversation_service.service_layer.conversation_service import ConversationService


class AssistantError(Exception):
    """The model could not answer."""


class Assistant:
    """Asks `model_id` questions, one conversation per topic, acting as `who`."""

    def __init__(self, service: ConversationService, who: Principal, model_id: UUID) -> None:
        self.service = service
        self.who = who
        self.model_id = model_id
        self._sessions: dict[str, ChatSession] = {}

    async def ask(self, topic: str, question: str) -> str:
        """The model's whole answer; AssistantError if it failed."""
        session = await self._session(topic)
        reply = await self.service.send_message(self.who, self.who.org_id, session.id, question)
        answer, events = "", reply.follow()
        while batch := await events.next_batch():
            for event in batch:
                if isinstance(event, ReplyContent):
                    answer += event.text
                elif isinstance(event, ReplyError):
                    raise AssistantError(f"{event.code}: {event.message}")
        return answer

    async def history(self, topic: str) -> list[tuple[str, str]]:
        """(role, text) of every message about `topic` (its current branch), oldest first."""
        session = await self._session(topic)
        page = await self.service.list_messages(
            self.who, self.who.org_id, session.conversation_id, limit=1000, offset=0
        )
        return [(m.message.role.value, m.message.content) for m in page.items]

    async def _session(self, topic: str) -> ChatSession:
        if topic not in self._sessions:
            conversation = await self.service.create_conversation(
                self.who, self.who.org_id, title=topic
            )
            self._sessions[topic] = await self.service.create_session(
                self.who, self.who.org_id, conversation_id=conversation.id, model_id=self.model_id
            )
        return self._sessions[topic]


def ask_remote(client: Client, topic: str, question: str, model_id: UUID | str) -> str:
    """The same over HTTP, through the service's Python client."""
    conversation = client.create_conversation(topic)
    session = client.create_session(conversation.id, model_id)
    with client.stream_chat(session.id, question) as stream:
        return stream.final_message().content
