"""What every part of the store contract shares: the store under test, made by the factory a
subclass gives, and the values it stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from conversation_service.testing.values import Values

Store = Any  # a ConversationStore that also keeps organisations (add_org); AccessStore for its part
# Opens a new, empty store each time it is called, closed when its block ends.
StoreFactory = Callable[[], AbstractAsyncContextManager[Any]]


class ContractBase:
    """Fixtures for the contract's tests; a subclass provides `store_factory`."""

    pytestmark = pytest.mark.trio  # async tests, with or without pytest-trio's trio_mode

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        pytest.fail(f"{type(self).__name__} must define a `store_factory` fixture")

    @pytest.fixture
    async def store(self, store_factory: StoreFactory) -> AsyncIterator[Store]:
        async with store_factory() as store:
            yield store

    @pytest.fixture
    def values(self) -> Values:
        return Values()
