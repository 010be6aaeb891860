"""The Telemetry port, implemented: the adapters' reports become metrics and log fields.

Here the labels are chosen, so that they stay bounded whatever the adapters report: a model
is named by its registry name when the operator's registry has it; the models organisations
register (named by tenants, as many as they register) are counted together by provider, as
`org:<provider>`; finish reasons a provider invents are `other`.
"""

from __future__ import annotations

from uuid import UUID

from conversation_service.domain.replies import (
    FINISH_CANCELLED,
    FINISH_ERROR,
    FINISH_LENGTH,
    FINISH_STOP,
    ReplyOutcome,
)
from conversation_service.entrypoints import structured_logs
from conversation_service.entrypoints.metrics import Metrics
from conversation_service.ports.language_model import ModelInfo

FINISH_REASONS = frozenset({FINISH_STOP, FINISH_LENGTH, FINISH_CANCELLED, FINISH_ERROR})


def model_label(model: ModelInfo) -> str:
    """The `model` label: the registry's name, or `org:<provider>` for an organisation's."""
    return model.name if model.scope == "global" else f"org:{model.provider}"


class ServiceTelemetry:
    """What the adapters report, into `metrics` and the log context."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def storage_batch(self, size: int, seconds: float) -> None:
        self.metrics.storage_batch_size.observe(size)
        self.metrics.storage_batch_seconds.observe(seconds)

    def reply_ended(self, model: ModelInfo, outcome: ReplyOutcome) -> None:
        reason = outcome.finish_reason if outcome.finish_reason in FINISH_REASONS else "other"
        self.metrics.replies.labels(model_label(model), outcome.status.value, reason).inc()

    def first_token(self, model: ModelInfo, seconds: float) -> None:
        self.metrics.first_token_seconds.labels(model_label(model)).observe(seconds)

    def model_failed(self, model: ModelInfo, code: str) -> None:
        # Codes are the adapters' constants (ports.language_model.ModelFailure), a small set.
        self.metrics.upstream_errors.labels(model_label(model), code).inc()

    def session_task(self, org_id: UUID, session_id: UUID) -> None:
        structured_logs.bind_session(org_id, session_id)
