"""Time and identity, injected so that the core never reads them itself."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID


class Clock(Protocol):
    """Wall-clock time, always timezone-aware UTC."""

    def now(self) -> datetime: ...


class IdGenerator(Protocol):
    """Fresh unique ids."""

    def new_id(self) -> UUID: ...
