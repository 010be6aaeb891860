"""What the service says about its own work: figures for its metrics, ids for its log lines.

The adapters report through this port as they work (a storage batch ran, a reply ended, a
model sent its first token or failed); the edge turns the reports into metrics and log
fields. Left out, nothing is reported (`NO_TELEMETRY`), as when the library is embedded.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from conversation_service.domain.replies import ReplyOutcome
from conversation_service.ports.language_model import ModelInfo


class Telemetry(Protocol):
    """Reports from the adapters. Each call is synchronous and cheap: never awaited."""

    def storage_batch(self, size: int, seconds: float) -> None:
        """The storage actor ran `size` requests in one batch, taking `seconds`."""
        ...

    def reply_ended(self, model: ModelInfo, outcome: ReplyOutcome) -> None:
        """A reply accepted on `model` ended as `outcome` says (once per reply)."""
        ...

    def first_token(self, model: ModelInfo, seconds: float) -> None:
        """The model's first text of a reply came `seconds` after it was asked."""
        ...

    def model_failed(self, model: ModelInfo, code: str) -> None:
        """The model could not finish a reply; `code` is the ModelFailure's."""
        ...

    def session_task(self, org_id: UUID, session_id: UUID) -> None:
        """The calling task (and the tasks it starts) works for this session from now on:
        its log lines name the session, and no request."""
        ...


class NoTelemetry:
    """Reports nothing."""

    def storage_batch(self, size: int, seconds: float) -> None:
        pass

    def reply_ended(self, model: ModelInfo, outcome: ReplyOutcome) -> None:
        pass

    def first_token(self, model: ModelInfo, seconds: float) -> None:
        pass

    def model_failed(self, model: ModelInfo, code: str) -> None:
        pass

    def session_task(self, org_id: UUID, session_id: UUID) -> None:
        pass


NO_TELEMETRY: Telemetry = NoTelemetry()
