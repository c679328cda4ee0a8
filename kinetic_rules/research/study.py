"""The study: Optuna's record of every trial, in a database so it can be resumed.

SQLite under user_data/research/ by default, or any SQLAlchemy URL (`--study`). The study
remembers the strategy's sha256 and the settings it was started with (objective,
constraints, searched params, span, sampler, seed): resuming with a different strategy or
different settings would mix incomparable trials, so it is refused unless `--new-study`
starts it afresh. Trials a killed driver left running are marked failed and their param
values queued again, so nothing is lost and nothing counted twice.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from kinetic_rules.errors import ConfigError
from kinetic_rules.research.objectives import Direction
from kinetic_rules.research.space import SearchSpace

SAMPLERS = ("tpe", "grid", "random", "cmaes")
DEFAULT_FOLDER = Path("user_data/research")
VIOLATIONS = "constraint_violations"

optuna.logging.set_verbosity(logging.WARNING)


@dataclass(frozen=True)
class StudySettings:
    """What makes two runs of a study comparable; stored with the study."""

    sha256: str
    objective: str
    constraints: tuple[str, ...]
    params: tuple[str, ...]
    span: str
    sampler: str
    seed: int

    def as_attrs(self) -> dict[str, Any]:
        return {
            "strategy_sha256": self.sha256,
            "objective": self.objective,
            "constraints": list(self.constraints),
            "params": list(self.params),
            "span": self.span,
            "sampler": self.sampler,
            "seed": self.seed,
        }


def default_url(strategy: Path) -> str:
    DEFAULT_FOLDER.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_FOLDER / (strategy.stem + '.sqlite')}"


def distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    out: dict[str, BaseDistribution] = {}
    for d in space.dimensions:
        if d.choices is not None:
            out[d.name] = CategoricalDistribution(list(d.choices))
        elif d.integer:
            out[d.name] = IntDistribution(int(d.low), int(d.high), step=int(d.step or 1))
        else:
            out[d.name] = FloatDistribution(d.low, d.high, step=d.step)
    return out


def _violations(trial: FrozenTrial) -> list[float]:
    return list(trial.user_attrs.get(VIOLATIONS, [1.0]))


class _Grid(optuna.samplers.GridSampler):
    """A grid for ask-and-tell: the search stops by itself at the grid's size, and
    Optuna's own stop works only inside `Study.optimize`, which the search does not use."""

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None


def make_sampler(name: str, seed: int, space: SearchSpace, constrained: bool) -> Any:
    with warnings.catch_warnings():  # constraints_func is flagged experimental by Optuna
        warnings.simplefilter("ignore")
        if name == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed, constraints_func=_violations if constrained else None
            )
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "grid":
            grid = {d.name: d.grid() for d in space.dimensions}
            return _Grid(grid, seed=seed)
        if name == "cmaes":
            if any(d.choices is not None for d in space.dimensions):
                raise ConfigError(
                    "--sampler cmaes searches numbers only; a choice or true/false param "
                    "needs tpe, grid or random (or leave it out of --params)"
                )
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    raise ConfigError(f"--sampler {name}: expected one of {', '.join(SAMPLERS)}")


def open_study(
    url: str,
    name: str,
    settings: StudySettings,
    direction: Direction,
    sampler: Any,
    new: bool,
) -> optuna.Study:
    """Create the study, or resume it when its settings match; refuse a mismatch."""
    try:
        storage = optuna.storages.RDBStorage(url)
    except Exception as problem:  # SQLAlchemy raises many kinds: each is the user's URL
        raise ConfigError(f"--study {masked_url(url)}: cannot open it ({problem})") from None
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if name in existing and new:
        optuna.delete_study(study_name=name, storage=storage)
    elif name in existing:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        _require_same(study, settings, url)
        _requeue_abandoned(study)
        return study
    study = optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, direction=direction
    )
    for key, value in settings.as_attrs().items():
        study.set_user_attr(key, value)
    return study


def _require_same(study: optuna.Study, settings: StudySettings, url: str) -> None:
    stored = study.user_attrs
    for key, value in settings.as_attrs().items():
        if stored.get(key) != value:
            what = (
                "a different strategy (its sha256 differs: the file changed)"
                if key == "strategy_sha256"
                else f"{key} {json.dumps(stored.get(key))}, not {json.dumps(value)}"
            )
            raise ConfigError(
                f"the study '{study.study_name}' in {masked_url(url)} holds {what}; resume it with "
                "the same settings, or start it afresh with --new-study (its trials are "
                "deleted), or name another database with --study"
            )


def _requeue_abandoned(study: optuna.Study) -> None:
    """Trials left running by a driver that was killed: failed, and their values queued.
    Through Optuna's public ask-and-tell API: `tell` of a FAIL state, then `enqueue_trial`
    (a trial finished meanwhile is skipped, not failed)."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        if trial.params:
            study.enqueue_trial(trial.params, skip_if_exists=False)


def masked_url(url: str) -> str:
    """A database URL with any password hidden."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"


def finished(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0 for v in _violations(trial))


def best_trial(study: optuna.Study, direction: Direction) -> FrozenTrial | None:
    """The best complete trial that meets every constraint; ties go to the earliest."""
    candidates = [t for t in finished(study) if feasible(t) and t.value is not None]
    if not candidates:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    return max(candidates, key=lambda t: (sign * float(t.value or 0.0), -t.number))


def trial_values(trial: FrozenTrial) -> Mapping[str, Any]:
    return dict(trial.params)
