"""The ConversationStore contract as a reusable suite: subclass `StoreContract` in a test
module, give it a `store_factory` fixture, and pytest runs the whole contract (round trips,
scoping, orders, paging, replies and versions, recovery, search, tokens and keys, and the
Hypothesis run that holds the store to the in-memory one on any sequence of operations)
against your store:

    from conversation_service.testing.store_contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_factory(self):
            return my_store_factory  # () -> async context manager of a new, empty store

The parts are classes of their own for a store that keeps less (`ConversationContract`,
`ReplyContract`, `SearchContract`, `AccessContract`, `AgreementContract`); every one needs
`add_org`. The tests are trio tests (pytest-trio); a new store is opened for each test and
for each Hypothesis example.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path

import trio_asyncio

from conversation_service.adapters.memory_store import InMemoryStore
from conversation_service.adapters.sql import SqlStore, open_sql_store
from conversation_service.testing.store_contract.access import AccessContract
from conversation_service.testing.store_contract.agreement import AgreementContract, SideBySide
from conversation_service.testing.store_contract.base import ContractBase, Store, StoreFactory
from conversation_service.testing.store_contract.conversations import ConversationContract
from conversation_service.testing.store_contract.replies import ReplyContract
from conversation_service.testing.store_contract.search import SearchContract


class StoreContract(
    ConversationContract, ReplyContract, SearchContract, AccessContract, AgreementContract
):
    """The whole contract; a subclass provides the `store_factory` fixture."""


def memory_store_factory() -> StoreFactory:
    """New in-memory stores."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[InMemoryStore]:
        yield InMemoryStore()

    return opened


def sql_store_factory(new_database: Callable[[], AbstractContextManager[str]]) -> StoreFactory:
    """New SQL stores, each on a database `new_database()` makes (a `databases` URL; it may
    drop the database when its block ends), inside a trio-asyncio loop of its own."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[SqlStore]:
        with new_database() as url:
            async with trio_asyncio.open_loop(), open_sql_store(url) as store:
                yield store

    return opened


def sqlite_files(folder: Callable[[], Path]) -> Callable[[], AbstractContextManager[str]]:
    """New SQLite databases, one file in each new folder `folder()` gives."""

    @contextmanager
    def new_file() -> Iterator[str]:
        yield f"sqlite+aiosqlite:///{folder()}/conversations.db"

    return new_file


__all__ = [
    "AccessContract",
    "AgreementContract",
    "ContractBase",
    "ConversationContract",
    "ReplyContract",
    "SearchContract",
    "SideBySide",
    "Store",
    "StoreContract",
    "StoreFactory",
    "memory_store_factory",
    "sql_store_factory",
    "sqlite_files",
]
