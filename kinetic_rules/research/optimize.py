"""The search loop: ask the sampler for param values, run trials, tell the results.

Trials are asked in rounds of a fixed size (`ROUND`) whatever the number of workers, and
told in trial order once the round is done. The sampler therefore sees the same history
at every ask however the trials were spread: the same seed gives the same study on one
process, on N local workers or on a Ray cluster.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from kinetic_rules.research.backends import Backend, Job
from kinetic_rules.research.objectives import Constraint, Direction, objective_value
from kinetic_rules.research.space import SearchSpace, Value
from kinetic_rules.research.study import VIOLATIONS, best_trial, distributions, finished
from kinetic_rules.research.trials import TrialOutcome

ROUND = 8  # trials asked before any of them is told: fixed, so results never depend on workers

# (trials done in this run, trials wanted, best value so far or None, best params)
Progress = Callable[[int, int, float | None, dict[str, Any]], None]


@dataclass(frozen=True)
class SearchSettings:
    objective: str
    direction: Direction
    constraints: tuple[Constraint, ...] = ()
    trials: int = 100


@dataclass
class SearchResult:
    best: FrozenTrial | None
    trials: list[FrozenTrial] = field(default_factory=list)
    ran: int = 0  # trials run by this call (a resumed study holds more)


def search(
    study: optuna.Study,
    space: SearchSpace,
    settings: SearchSettings,
    backend: Backend,
    progress: Progress | None = None,
) -> SearchResult:
    """Run trials until the study holds `settings.trials` finished ones (a resumed study
    only runs the rest); a grid stops when every point has been tried."""
    fixed = distributions(space)
    target = settings.trials
    if isinstance(study.sampler, optuna.samplers.GridSampler):
        target = min(target, space.grid_size())
    done_before = len(_counted(study))
    ran = 0
    while len(_counted(study)) < target:
        wanted = min(ROUND, target - len(_counted(study)))
        asked = [study.ask(fixed) for _ in range(wanted)]
        by_number = {trial.number: trial for trial in asked}
        jobs: list[Job] = [(t.number, _values(t.params)) for t in asked]
        outcomes: dict[int, TrialOutcome] = {}
        for number, outcome in backend.map(jobs):
            outcomes[number] = outcome
            if progress is not None:
                _report(progress, study, settings, ran + len(outcomes), target - done_before)
        for number in sorted(outcomes):
            _tell(study, by_number[number], outcomes[number], settings)
        ran += len(asked)
        if progress is not None:
            _report(progress, study, settings, ran, target - done_before)
    return SearchResult(best_trial(study, settings.direction), finished(study), ran)


def _report(
    progress: Progress, study: optuna.Study, settings: SearchSettings, done: int, total: int
) -> None:
    best = best_trial(study, settings.direction)
    value = None if best is None else best.value
    progress(done, total, value, {} if best is None else dict(best.params))


def _counted(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count towards the total: finished ones, failed by a user error included
    (a failure because the driver died is requeued, not counted)."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        if t.state == TrialState.COMPLETE or "error" in t.user_attrs
    ]


def _values(params: dict[str, Any]) -> dict[str, Value]:
    return {name: value for name, value in params.items()}


def _tell(
    study: optuna.Study, trial: optuna.Trial, outcome: TrialOutcome, settings: SearchSettings
) -> None:
    if outcome.error is not None:
        trial.set_user_attr("error", outcome.error)
        study.tell(trial, state=TrialState.FAIL)
        return
    for name, value in outcome.values.items():
        trial.set_user_attr(name, value if value is None or math.isfinite(value) else None)
    trial.set_user_attr("daily_returns", outcome.daily_returns)
    trial.set_user_attr(VIOLATIONS, [c.violation(outcome.values) for c in settings.constraints])
    value = objective_value(outcome.values, settings.objective)
    if value is None or math.isnan(value):
        trial.set_user_attr("error", f"{settings.objective} does not exist for this trial")
        study.tell(trial, state=TrialState.FAIL)
        return
    study.tell(trial, value)
