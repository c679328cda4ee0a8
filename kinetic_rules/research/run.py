"""`optimize` from end to end: check every input, search, write the tuned file and reports.

Everything a person can get wrong (objective, constraints, params, the file, the data, a
study of another strategy) is checked before the first trial runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kinetic_rules.backtest.runner import BacktestRequest
from kinetic_rules.compile.series_cache import DEFAULT_MB
from kinetic_rules.errors import ConfigError
from kinetic_rules.research.backends import open_backend
from kinetic_rules.research.objectives import (
    Constraint,
    Direction,
    check_objective,
    parse_constraint,
)
from kinetic_rules.research.optimize import Progress, SearchResult, SearchSettings, search
from kinetic_rules.research.space import SearchSpace, Value, current_values, search_space
from kinetic_rules.research.study import (
    SAMPLERS,
    StudySettings,
    default_url,
    make_sampler,
    open_study,
)
from kinetic_rules.research.trials import TrialContext, TrialOutcome, TrialRunner, build_context
from kinetic_rules.spec.loader import LoadedStrategy, load_file

MAX_TRIALS = 100_000
MAX_CACHE_MB = 1 << 20  # a terabyte: a bound, not a suggestion


@dataclass
class OptimizeOptions:
    params: list[str] | None = None
    objective: str = "sharpe"
    constraints: list[str] = field(default_factory=list)
    trials: int = 100
    sampler: str = "tpe"
    seed: int = 0
    study_url: str | None = None
    new_study: bool = False
    workers: int = 1
    ray: str | None = None
    cache_mb: int = DEFAULT_MB  # series each worker keeps across trials (0: none)


@dataclass(frozen=True)
class Checked:
    """The inputs of a search, all checked."""

    loaded: LoadedStrategy
    space: SearchSpace
    direction: Direction
    constraints: tuple[Constraint, ...]
    sha256: str


def check_inputs(strategy: Path, options: OptimizeOptions) -> Checked:
    if not strategy.exists():
        raise ConfigError(f"{strategy}: no such file")
    if options.sampler not in SAMPLERS:
        raise ConfigError(f"--sampler {options.sampler}: expected one of {', '.join(SAMPLERS)}")
    if not 1 <= options.trials <= MAX_TRIALS:
        raise ConfigError(f"--trials {options.trials}: expected 1 to {MAX_TRIALS:,}")
    if options.workers < 1:
        raise ConfigError(f"--workers {options.workers}: expected 1 or more")
    if not 0 <= options.cache_mb <= MAX_CACHE_MB:
        raise ConfigError(f"--cache-mb {options.cache_mb}: expected 0 (none) to {MAX_CACHE_MB:,}")
    direction = check_objective(options.objective)
    constraints = tuple(parse_constraint(text) for text in options.constraints)
    loaded = load_file(strategy)
    space = search_space(loaded, options.params)
    sha256 = hashlib.sha256(loaded.source.text.encode()).hexdigest()
    return Checked(loaded, space, direction, constraints, sha256)


@dataclass
class WindowSearch:
    """One finished search: the study's best trial and the values to use."""

    result: SearchResult
    best_values: dict[str, Value]
    baseline: TrialOutcome


def run_search(
    checked: Checked,
    context: TrialContext,
    options: OptimizeOptions,
    study_name: str,
    span: str,
    url: str,
    progress: Progress | None = None,
) -> WindowSearch:
    """Search one span (a whole optimize run, or one training window)."""
    settings = StudySettings(
        sha256=checked.sha256,
        objective=options.objective,
        constraints=tuple(c.text for c in checked.constraints),
        params=tuple(checked.space.names),
        span=span,
        sampler=options.sampler,
        seed=options.seed,
    )
    sampler = make_sampler(options.sampler, options.seed, checked.space, bool(checked.constraints))
    study = open_study(url, study_name, settings, checked.direction, sampler, options.new_study)
    baseline_values = current_values(checked.loaded, checked.space)
    baseline = TrialRunner(context, keep_series=False).run(baseline_values)
    context = replace(context, cache_mb=options.cache_mb)
    backend = open_backend(context, options.workers, options.ray)
    try:
        result = search(
            study,
            checked.space,
            SearchSettings(
                options.objective, checked.direction, checked.constraints, options.trials
            ),
            backend,
            progress,
        )
    finally:
        backend.close()
    best = dict(result.best.params) if result.best is not None else baseline_values
    return WindowSearch(result, best, baseline)


def optimize(
    strategy: Path,
    request: BacktestRequest,
    options: OptimizeOptions,
    progress: Progress | None = None,
) -> tuple[Checked, WindowSearch]:
    checked = check_inputs(strategy, options)
    context = build_context(request)
    url = options.study_url or default_url(strategy)
    span = f"{request.start}..{request.end}"
    name = checked.loaded.strategy.metadata.name
    return checked, run_search(checked, context, options, name, span, url, progress)


def trial_rows(
    result: SearchResult, limit: int = 20, direction: Direction = "maximize"
) -> list[dict[str, Any]]:
    """The best finished trials, best first, as plain rows for reports."""
    sign = 1.0 if direction == "maximize" else -1.0
    ranked = sorted(
        (t for t in result.trials if t.value is not None),
        key=lambda t: (-sign * float(t.value or 0.0), t.number),
    )
    rows = []
    for trial in ranked[:limit]:
        metrics = {k: v for k, v in trial.user_attrs.items() if k != "daily_returns"}
        rows.append(
            {"number": trial.number, "value": trial.value, "params": trial.params, **metrics}
        )
    return rows
