"""Running the state machine against a target, and what came of it."""

from __future__ import annotations

import attrs
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from conversation_service.testing.verify.api import Disagreement
from conversation_service.testing.verify.machine import DeploymentMachine
from conversation_service.testing.verify.target import Target


@attrs.frozen(kw_only=True)
class Outcome:
    """What a run found: nothing, a disagreement (or another error that stopped it), and the
    steps, as Hypothesis shrank them, that lead to it."""

    examples: int
    requests: int
    disagreement: Disagreement | None = None
    error: BaseException | None = None
    steps: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.disagreement is None and self.error is None

    def report(self) -> str:
        """What a person reads: the verdict, what disagreed with the model, and how."""
        ran = f"{self.examples} runs of the machine, {self.requests} requests"
        if self.passed:
            return f"OK: no disagreement with the model ({ran})."
        if self.disagreement is not None:
            head = f"DISAGREEMENT ({self.disagreement.kind}): {self.disagreement.message}"
        else:
            head = f"ERROR: {type(self.error).__name__}: {self.error}"
        steps = "\n".join(f"  {step}" for step in self.steps if not step.startswith("Failing"))
        return f"{head}\nFound in {ran}; the steps that lead to it:\n{steps}"


def verify(target: Target, *, examples: int = 10, steps: int = 20, shrink: bool = True) -> Outcome:
    """Run up to `examples` sequences of up to `steps` rules against `target`; a failure is
    shrunk to fewer steps unless `shrink` is False (each try replays steps against the
    deployment: minutes of requests)."""
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    try:
        run_state_machine_as_test(
            lambda: DeploymentMachine(target),  # type: ignore[arg-type]  # a factory will do
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                database=None,  # nothing written where the command runs
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
                phases=phases,
                print_blob=False,
            ),
        )
    except Exception as error:  # what the run found, reported rather than raised
        found = _disagreement(error)
        return Outcome(
            examples=target.examples,
            requests=target.requests,
            disagreement=found,
            error=None if found is not None else error,
            steps=tuple(getattr(found or error, "__notes__", ())),
        )
    return Outcome(examples=target.examples, requests=target.requests)


def _disagreement(error: BaseException) -> Disagreement | None:
    """The Disagreement in `error`, also inside a group (Hypothesis reports a failure that
    did not happen again when replayed, as a live server's races may, in one)."""
    if isinstance(error, Disagreement):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := _disagreement(inner)) is not None:
                return found
    return None
