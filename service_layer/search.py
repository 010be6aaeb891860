"""Searching conversations: the query read by the domain's rules, the matches found and
ranked by the store, the snippets made here (the same for every store)."""

from __future__ import annotations

from uuid import UUID

import attrs

from conversation_service.domain.model import Page
from conversation_service.domain.search import (
    SearchQuery,
    SearchResult,
    Snippet,
    parse_query,
    snippet_parts,
)
from conversation_service.ports.storage import ConversationStore, SearchHit


@attrs.frozen(kw_only=True)
class SearchPage:
    """A page of the conversations a query matches, best first, and the query as read."""

    query: SearchQuery
    results: Page[SearchResult]


async def search_conversations(
    store: ConversationStore,
    org_id: UUID,
    text: str | None,
    *,
    is_archived: bool | None,
    limit: int,
    offset: int,
) -> SearchPage:
    """InvalidField naming `q` for a text that is no query (domain.search.parse_query)."""
    query = parse_query(text)
    page = await store.search_conversations(
        org_id, query, is_archived=is_archived, limit=limit, offset=offset
    )
    results = Page(
        items=tuple(_result(hit, query) for hit in page.items),
        limit=page.limit,
        offset=page.offset,
        has_more=page.has_more,
    )
    return SearchPage(query=query, results=results)


def _result(hit: SearchHit, query: SearchQuery) -> SearchResult:
    if hit.best is not None:
        snippet = Snippet(
            message_id=hit.best.message_id, parts=snippet_parts(hit.best.content, query)
        )
    else:
        snippet = Snippet(message_id=None, parts=snippet_parts(hit.conversation.title or "", query))
    return SearchResult(
        conversation=hit.conversation,
        title_matches=hit.title_matches,
        message_count=hit.message_count,
        message_ids=hit.message_ids,
        snippet=snippet,
    )
