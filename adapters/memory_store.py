"""A store kept in process memory: for unit tests and for apps embedding the library.

It implements the same ports as the SQL store, with the same ordering and scoping rules.
Nothing survives the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import attrs

from conversation_service.adapters.memory_keeping import KeepingInMemory
from conversation_service.domain.branches import ListedMessage, MessageTree
from conversation_service.domain.feedback import Feedback
from conversation_service.domain.model import (
    AccessRole,
    ChatSession,
    ContextScope,
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    Org,
    Page,
)
from conversation_service.domain.replies import INTERRUPTED, ReplyOutcome
from conversation_service.domain.search import MATCHED_IDS, SearchQuery, relevance
from conversation_service.domain.session_machine import SessionInput, SessionState
from conversation_service.ports.storage import (
    BestMatch,
    History,
    IdempotentResult,
    ModelUsage,
    SearchHit,
    StaleVersion,
    StorageUnavailable,
    StoredModel,
    TokenInfo,
)


class InMemoryStore(KeepingInMemory):
    """ConversationStore and AccessStore over dictionaries."""

    def __init__(self) -> None:
        self._orgs: dict[UUID, Org] = {}
        self._tokens: dict[str, TokenInfo] = {}  # by hash
        self._conversations: dict[UUID, Conversation] = {}
        self._sessions: dict[UUID, ChatSession] = {}
        self._messages: dict[UUID, Message] = {}  # insertion order is message order
        self._keys: dict[tuple[str, str], tuple[datetime, IdempotentResult]] = {}
        self._org_models: dict[UUID, StoredModel] = {}
        self._feedback: dict[UUID, Feedback] = {}  # by message id
        # A session's latest reply stored in progress (it may have ended since: checked on
        # use), so that "one reply in progress a session" is not a scan of every message.
        self._replying: dict[UUID, UUID] = {}

    # -- access -------------------------------------------------------------------------
    async def add_org(self, org: Org) -> None:
        self._orgs[org.id] = org

    async def get_org(self, org_id: UUID) -> Org | None:
        return self._orgs.get(org_id)

    async def count_orgs(self) -> int:
        return len(self._orgs)

    async def add_token(
        self,
        *,
        token_id: UUID,
        org_id: UUID,
        role: AccessRole,
        token_hash: str,
        at: datetime,
        expires_at: datetime | None = None,
    ) -> None:
        self._tokens[token_hash] = TokenInfo(
            id=token_id,
            org_id=org_id,
            role=role,
            created_at=at,
            expires_at=expires_at,
            revoked_at=None,
        )

    async def find_token(self, token_hash: str, at: datetime) -> TokenInfo | None:
        token = self._tokens.get(token_hash)
        if token is None or token.revoked_at is not None:
            return None
        if token.expires_at is not None and token.expires_at <= at:
            return None
        return token

    async def list_tokens(self, org_id: UUID) -> Sequence[TokenInfo]:
        return [t for t in self._tokens.values() if t.org_id == org_id]

    async def revoke_token(self, token_id: UUID, at: datetime) -> TokenInfo | None:
        for token_hash, token in self._tokens.items():
            if token.id == token_id:
                if token.revoked_at is None:
                    token = attrs.evolve(token, revoked_at=at)
                    self._tokens[token_hash] = token
                return token
        return None

    # -- conversations ------------------------------------------------------------------
    async def add_conversation(self, conversation: Conversation) -> None:
        self._conversations[conversation.id] = conversation

    async def get_conversation(self, org_id: UUID, conversation_id: UUID) -> Conversation | None:
        found = self._conversations.get(conversation_id)
        return found if found is not None and found.org_id == org_id else None

    async def list_conversations(
        self, org_id: UUID, *, is_archived: bool | None, limit: int, offset: int
    ) -> Page[Conversation]:
        mine = [
            c
            for c in self._conversations.values()
            if c.org_id == org_id and (is_archived is None or c.is_archived == is_archived)
        ]
        mine.sort(key=lambda c: (c.updated_at, c.created_at, str(c.id)), reverse=True)
        return _page(mine, limit, offset)

    def _touch(self, conversation_id: UUID, at: datetime) -> None:
        conversation = self._conversations.get(conversation_id)
        if conversation is not None:
            self._conversations[conversation_id] = conversation.touched(at)

    # -- sessions -----------------------------------------------------------------------
    async def add_session(self, session: ChatSession) -> None:
        self._sessions[session.id] = session
        self._touch(session.conversation_id, session.created_at)

    async def update_session(self, session: ChatSession) -> None:
        self._check_session(session)
        self._sessions[session.id] = session

    def _check_session(self, session: ChatSession) -> None:
        stored = self._sessions.get(session.id)
        if stored is None or stored.org_id != session.org_id:
            raise StaleVersion(f"chat session {session.id} does not exist")
        if stored.version != session.version - 1:
            raise StaleVersion(
                f"chat session {session.id} is at version {stored.version}, not "
                f"{session.version - 1}: it was changed by another writer"
            )

    async def get_session(self, org_id: UUID, session_id: UUID) -> ChatSession | None:
        found = self._sessions.get(session_id)
        return found if found is not None and found.org_id == org_id else None

    async def list_sessions(self, org_id: UUID, conversation_id: UUID) -> Sequence[ChatSession]:
        return [
            s
            for s in self._sessions.values()
            if s.org_id == org_id and s.conversation_id == conversation_id
        ]

    # -- messages -----------------------------------------------------------------------
    async def add_message(self, message: Message) -> None:
        self._check_one_reply(message)
        self._messages[message.id] = message
        self._note_reply(message)
        self._touch(message.conversation_id, message.created_at)

    async def update_message(self, message: Message) -> None:
        self._check_in_progress(message)
        self._messages[message.id] = message

    def _check_one_reply(self, message: Message) -> None:
        if message.status is not MessageStatus.IN_PROGRESS:
            return
        reply_id = self._replying.get(message.chat_session_id)
        held = None if reply_id is None else self._messages.get(reply_id)
        if (
            held is not None
            and held.id != message.id
            and held.chat_session_id == message.chat_session_id
            and held.status is MessageStatus.IN_PROGRESS
        ):
            raise StaleVersion(f"session {message.chat_session_id} has a reply in progress")

    def _check_in_progress(self, message: Message) -> None:
        stored = self._messages.get(message.id)
        if stored is None or stored.org_id != message.org_id:
            raise StaleVersion(f"message {message.id} does not exist")
        if stored.status is not MessageStatus.IN_PROGRESS:
            raise StaleVersion(f"message {message.id} is {stored.status.value}, not in progress")

    # Each checks everything before it changes anything: one transaction, as in SQL.
    async def begin_reply(
        self, user: Message | None, reply: Message, session: ChatSession, *, history_limit: int
    ) -> History:
        self._check_session(session)
        for message in (reply,) if user is None else (user, reply):
            if message.id in self._messages:
                raise StorageUnavailable(f"message {message.id} exists already")
            self._check_one_reply(message)
        question = user
        if question is None and reply.parent_id is not None:
            question = self._messages.get(reply.parent_id)  # answered again
        if question is None or question.org_id != session.org_id:
            raise StorageUnavailable(f"reply {reply.id} answers no stored message")
        history = self._shown_before(question, session) if history_limit > 0 else []
        if user is not None:
            await self.add_message(user)
        await self.add_message(reply)
        self._sessions[session.id] = session
        if history_limit <= 0:
            return History(messages=(), not_read=0)
        read = history[-history_limit:]
        return History(messages=tuple(read), not_read=len(history) - len(read))

    def _shown_before(self, question: Message, session: ChatSession) -> list[Message]:
        """What a reply to `question` is shown (ConversationStore.begin_reply)."""
        tree = MessageTree(self._in_conversation(session.org_id, session.conversation_id))
        branch = tree.lineage(question.parent_id)
        if session.context is ContextScope.CONVERSATION:
            order = {message_id: n for n, message_id in enumerate(self._messages)}
            before = order.get(question.id, len(order))
            for other in self._sessions.values():
                if other.conversation_id == session.conversation_id and other.id != session.id:
                    theirs = tree.lineage(other.head_id)
                    branch += [m for m in theirs if order[m.id] < before]
            branch.sort(key=lambda m: order[m.id])
        return [
            m
            for m in branch
            if m.status is not MessageStatus.IN_PROGRESS
            and not (m.role is MessageRole.ASSISTANT and not m.content)
        ]

    def _in_conversation(self, org_id: UUID, conversation_id: UUID) -> list[Message]:
        return [
            m
            for m in self._messages.values()
            if m.org_id == org_id and m.conversation_id == conversation_id
        ]

    async def end_reply(self, reply: Message, session: ChatSession) -> None:
        self._check_in_progress(reply)
        self._check_session(session)
        self._messages[reply.id] = reply
        self._sessions[session.id] = session

    async def recover_session(self, session: ChatSession) -> None:
        self._check_session(session)
        for message in list(self._messages.values()):
            if message.chat_session_id == session.id:
                if message.status is MessageStatus.IN_PROGRESS:
                    self._messages[message.id] = _interrupted(message, session.updated_at)
        self._sessions[session.id] = session

    async def get_message(self, org_id: UUID, message_id: UUID) -> Message | None:
        found = self._messages.get(message_id)
        return found if found is not None and found.org_id == org_id else None

    async def list_messages(
        self, org_id: UUID, conversation_id: UUID, *, limit: int, offset: int
    ) -> Page[Message]:
        mine = [
            m
            for m in self._messages.values()
            if m.org_id == org_id and m.conversation_id == conversation_id
        ]
        return _page(mine, limit, offset)

    async def list_branch(
        self,
        org_id: UUID,
        conversation_id: UUID,
        *,
        through: Message | None,
        limit: int,
        offset: int,
    ) -> Page[ListedMessage]:
        mine = self._in_conversation(org_id, conversation_id)
        tree = MessageTree(mine)
        leaves = {
            s.id: s.head_id
            for s in self._sessions.values()
            if s.org_id == org_id and s.conversation_id == conversation_id
        }
        if through is not None:
            leaf = tree.newest_leaf(through.id)
            leaves[through.chat_session_id] = None if leaf is None else leaf.id
        shown = {m.id for leaf_id in leaves.values() for m in tree.lineage(leaf_id)}
        return _page([tree.listed(m) for m in mine if m.id in shown], limit, offset)

    async def on_branch(self, org_id: UUID, leaf_id: UUID, message_id: UUID) -> bool:
        leaf = await self.get_message(org_id, leaf_id)
        if leaf is None:
            return False
        tree = MessageTree(self._in_conversation(org_id, leaf.conversation_id))
        return tree.on_branch(leaf_id, message_id)

    async def newest_leaf(self, org_id: UUID, message_id: UUID) -> UUID | None:
        message = await self.get_message(org_id, message_id)
        if message is None:
            return None
        leaf = MessageTree(self._in_conversation(org_id, message.conversation_id)).newest_leaf(
            message_id
        )
        return None if leaf is None else leaf.id

    async def session_messages(self, org_id: UUID, session_id: UUID) -> Sequence[Message]:
        return [
            m
            for m in self._messages.values()
            if m.org_id == org_id and m.chat_session_id == session_id
        ]

    async def conversation_messages(self, org_id: UUID, conversation_id: UUID) -> Sequence[Message]:
        return [
            m
            for m in self._messages.values()
            if m.org_id == org_id and m.conversation_id == conversation_id
        ]

    async def usage_by_model(
        self, org_id: UUID, *, start: datetime, end: datetime
    ) -> Sequence[ModelUsage]:
        totals: dict[UUID, list[int]] = {}
        for m in self._messages.values():
            if m.org_id != org_id or m.model_id is None or not start <= m.created_at < end:
                continue
            row = totals.setdefault(m.model_id, [0, 0, 0, 0])
            row[0] += 1
            if m.usage is not None:
                row[1] += m.usage.prompt_tokens
                row[2] += m.usage.completion_tokens
                row[3] += int(m.usage.estimated)
        return [
            ModelUsage(
                model_id=model_id,
                replies=r,
                prompt_tokens=p,
                completion_tokens=c,
                estimated_replies=e,
            )
            for model_id, (r, p, c, e) in sorted(totals.items(), key=lambda kv: str(kv[0]))
        ]

    async def search_conversations(
        self,
        org_id: UUID,
        query: SearchQuery,
        *,
        is_archived: bool | None,
        limit: int,
        offset: int,
    ) -> Page[SearchHit]:
        """Every message and title read and matched in turn (domain.search.relevance)."""
        matching: dict[UUID, list[tuple[float, Message]]] = {}
        for message in self._messages.values():  # in message order
            if message.org_id != org_id or message.status is MessageStatus.IN_PROGRESS:
                continue
            score = relevance(message.content, query)
            if score is not None:
                matching.setdefault(message.conversation_id, []).append((score, message))
        ranked = []
        for conversation in self._conversations.values():
            if conversation.org_id != org_id or is_archived not in (None, conversation.is_archived):
                continue
            found = matching.get(conversation.id, [])
            titled = relevance(conversation.title or "", query) is not None
            if found or titled:
                best = max(score for score, _ in found) if found else 0.0
                ranked.append((titled, best, conversation, found))
        ranked.sort(
            key=lambda r: (r[0], r[1], r[2].updated_at, r[2].created_at, str(r[2].id)),
            reverse=True,
        )
        hits = [_hit(conversation, titled, found) for titled, _, conversation, found in ranked]
        return _page(hits, limit, offset)

    async def claim_key(
        self, scope: str, key: str, fingerprint: str, at: datetime
    ) -> IdempotentResult | None:
        kept = self._keys.get((scope, key))
        if kept is not None:
            return kept[1]
        self._keys[(scope, key)] = (at, IdempotentResult(fingerprint=fingerprint, done=False))
        return None

    async def finish_key(self, scope: str, key: str, status: int, body: str) -> None:
        at, claim = self._keys[(scope, key)]
        self._keys[(scope, key)] = (at, attrs.evolve(claim, done=True, status=status, body=body))

    async def release_key(self, scope: str, key: str) -> None:
        self._keys.pop((scope, key), None)

    async def forget_keys(self, *, before: datetime | None, unfinished: bool = False) -> None:
        for name, (at, claim) in list(self._keys.items()):
            if (before is not None and at < before) or (unfinished and not claim.done):
                del self._keys[name]

    async def add_org_model(self, model: StoredModel) -> None:
        self._org_models[model.id] = model

    async def list_org_models(self) -> Sequence[StoredModel]:
        return list(self._org_models.values())

    async def delete_org_model(self, org_id: UUID, model_id: UUID) -> bool:
        found = self._org_models.get(model_id)
        if found is None or found.org_id != org_id:
            return False
        del self._org_models[model_id]
        return True

    async def recover_interrupted(self, at: datetime) -> int:
        marked = 0
        for message in list(self._messages.values()):
            if message.status is MessageStatus.IN_PROGRESS:
                self._messages[message.id] = _interrupted(message, at)
                marked += 1
        for session in list(self._sessions.values()):
            if session.status is SessionState.RESPONDING:
                self._sessions[session.id] = session.apply(SessionInput.RECOVER, at)
        return marked


def _hit(conversation: Conversation, titled: bool, found: list[tuple[float, Message]]) -> SearchHit:
    best = None
    if found:
        top = max(score for score, _ in found)
        chosen = next(message for score, message in found if score == top)  # the earliest
        best = BestMatch(message_id=chosen.id, content=chosen.content)
    return SearchHit(
        conversation=conversation,
        title_matches=titled,
        message_count=len(found),
        message_ids=tuple(message.id for _, message in found[:MATCHED_IDS]),
        best=best,
    )


def _interrupted(message: Message, at: datetime) -> Message:
    outcome = ReplyOutcome.interrupted(*INTERRUPTED)
    return message.finished(
        content=message.content,
        status=outcome.status,
        finish_reason=outcome.finish_reason,
        usage=message.usage,
        at=at,
        error=outcome.error,
        latency=message.latency,
    )


def _page(items: list, limit: int, offset: int) -> Page:  # type: ignore[type-arg]
    chunk = items[offset : offset + limit]
    return Page(
        items=tuple(chunk), limit=limit, offset=offset, has_more=offset + limit < len(items)
    )
