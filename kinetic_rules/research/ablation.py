"""Ablation: the backtest again with each named part of a strategy switched off in turn.

What each part contributes is the difference between the baseline and the run without
it. Every variant is a spec built by `spec.ablation.switch_off`, then checked and
compiled once like any file and simulated on the same candles and pairs as the
baseline. Variants run one after another, or in `workers` local processes that each
read the candles once. Each process keeps the series its variants compute (a
`SeriesCache`): a variant computes only what switching its part off changed.
"""

from __future__ import annotations

import difflib
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from kinetic_rules.backtest.metrics import compute_metrics
from kinetic_rules.backtest.runner import BacktestRequest, Prepared, prepare, simulate
from kinetic_rules.compile.modes import require_mode
from kinetic_rules.compile.plan import Plan, build_plan
from kinetic_rules.compile.series_cache import SeriesCache
from kinetic_rules.errors import Diagnostic, KineticError, Source, Span, StrategyError
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.ablation import Part, switch_off, switchable_parts
from kinetic_rules.spec.loader import LoadedStrategy, Positions, load_file

Progress = Callable[[str, int, int], None]  # (what, done, total)
BASELINE = "baseline"
MAX_WORKERS = 64


@dataclass(frozen=True)
class Variant:
    """One run: the parts it switches off (none for the baseline) and how to show it."""

    label: str  # baseline, a part's address, or a group's name
    kind: str  # baseline, entry condition, …, group
    switched_off: str  # what the parts became, in words
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """A variant's metrics (Metrics.to_dict()), or why it could not run."""

    variant: Variant
    metrics: dict[str, Any] | None
    error: str | None = None
    notes: tuple[str, ...] = ()  # what the backtest report would warn about
    trades_from: pd.Timestamp | None = None  # the first candle that could trade


@dataclass
class AblationResult:
    strategy_name: str
    strategy_file: str
    strategy_sha256: str
    pairs: list[str]
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def baseline(self) -> Outcome:
        return self.outcomes[0]


def plan_variants(loaded: LoadedStrategy, only: Sequence[str] = ()) -> list[Variant]:
    """The baseline, then each part that is not pinned, then each group, in file order;
    with `only`, the baseline and the named parts and groups (StrategyError for a name
    that is neither, pointing at it on the command line)."""
    spec = loaded.strategy
    parts = switchable_parts(spec)
    pinned = spec.ablation.pinned
    groups = {
        name: Variant(name, "group", _group_words(members, parts), tuple(members))
        for name, members in spec.ablation.groups.items()
    }
    singles = {address: _single(part) for address, part in parts.items()}
    variants = [Variant(BASELINE, "baseline", "nothing")]
    if not only:
        variants += [v for address, v in singles.items() if address not in pinned]
        return variants + list(groups.values())
    chosen = _resolve(list(only), parts, groups, pinned, loaded.positions)
    return variants + [singles[name] if name in singles else groups[name] for name in chosen]


def _single(part: Part) -> Variant:
    return Variant(part.address, part.kind, part.switched_off, (part.address,))


def _group_words(members: list[str], parts: dict[str, Part]) -> str:
    return "; ".join(f"{a} → {parts[a].switched_off}" for a in members if a in parts)


def _resolve(
    names: list[str],
    parts: dict[str, Part],
    groups: dict[str, Variant],
    pinned: list[str],
    positions: Positions,
) -> list[str]:
    """`--only` names → addresses or group names; a bare name may stand for the one part
    that has it (`momentum` for entry.long.momentum)."""
    source = Source("--only", ",".join(names))
    problems: list[Diagnostic] = []
    chosen: list[str] = []
    offset = 0
    for name in names:
        span = Span(source, offset, offset + max(len(name), 1))
        offset += len(name) + 1
        found, problem = _lookup(name, parts, groups, pinned, positions)
        if problem is not None:
            message, hint = problem
            problems.append(Diagnostic("error", "ablate", message, span, hint))
        elif found is not None and found not in chosen:
            chosen.append(found)
    if problems:
        raise StrategyError(problems)
    return chosen


def _lookup(
    name: str,
    parts: dict[str, Part],
    groups: dict[str, Variant],
    pinned: list[str],
    positions: Positions,
) -> tuple[str | None, tuple[str, str | None] | None]:
    if name in groups:
        return name, None
    matches = [name] if name in parts else [a for a, p in parts.items() if p.name == name]
    if len(matches) > 1:
        return None, (f"'{name}' names {len(matches)} parts", "write one: " + ", ".join(matches))
    if not matches:
        known = [*parts, *groups]
        near = difflib.get_close_matches(name, known + [p.name for p in parts.values()], n=1)
        if near:
            hint = f"did you mean {near[0]}?"
        else:
            hint = "parts: " + ", ".join(known) if known else "this strategy has no named parts"
        return None, (f"'{name}' is not a part or group of this strategy", hint)
    address = matches[0]
    if address in pinned:
        where = positions.span(("ablation", "pinned", pinned.index(address))).location()
        return None, (
            f"{address} is pinned (ablation.pinned, {where}), so it is never switched off",
            "remove it from ablation.pinned to measure it",
        )
    return address, None


def run_ablation(
    request: BacktestRequest,
    only: Sequence[str] = (),
    workers: int = 1,
    progress: Progress | None = None,
) -> AblationResult:
    """Every variant's metrics, the baseline first; errors in the file or the names given
    are raised before any backtest runs."""
    if progress:
        progress("loading", 0, 0)
    loaded = load_file(request.strategy)
    prepared = prepare(request)  # checks the file as written: its errors come first
    variants = plan_variants(loaded, only)
    result = AblationResult(
        strategy_name=loaded.strategy.metadata.name,
        strategy_file=str(request.strategy),
        strategy_sha256=prepared.sha256,
        pairs=prepared.pairs,
        start=request.start,
        end=request.end,
    )
    base = _Base(request, prepared, loaded)
    baseline = base.run(variants[0], quiet=False)  # its errors are the command's errors
    by_label = {baseline.variant.label: baseline}
    if progress:
        progress("variants", 1, len(variants))
    # Every variant trades the baseline's span: a part with the longest warm-up must not
    # buy its variant extra months to trade.
    start = baseline.trades_from
    rest = variants[1:]
    if workers > 1 and rest:
        runs = _in_workers(request, rest, workers, start)
    else:
        runs = (base.run(variant, start) for variant in rest)
    for done, outcome in enumerate(runs, start=2):
        by_label[outcome.variant.label] = outcome
        if progress:
            progress("variants", done, len(variants))
    result.outcomes = [by_label[v.label] for v in variants]
    return result


def _in_workers(
    request: BacktestRequest, variants: list[Variant], workers: int, start: pd.Timestamp | None
) -> Iterator[Outcome]:
    # spawn, not fork: the parent may hold threads (the progress display) that a forked
    # child would inherit mid-lock.
    context = multiprocessing.get_context("spawn")
    count = min(workers, len(variants), MAX_WORKERS)
    with ProcessPoolExecutor(
        count, context, initializer=_start_worker, initargs=(request,)
    ) as pool:
        futures = [pool.submit(_run_in_worker, variant, start) for variant in variants]
        for future in as_completed(futures):
            yield future.result()


class _Base:
    """The strategy as written, its candles and pairs: what every variant shares."""

    def __init__(
        self, request: BacktestRequest, prepared: Prepared, loaded: LoadedStrategy
    ) -> None:
        self.request = request
        self.prepared = prepared
        self.loaded = loaded
        self.cache = SeriesCache()

    def run(
        self, variant: Variant, start: pd.Timestamp | None = None, quiet: bool = True
    ) -> Outcome:
        """The variant's metrics, trading from `start` (default: the request's); a user
        error is its row's `error` unless not `quiet`."""
        try:
            plan = self._compile(variant) if variant.addresses else self.prepared.plan
            result = simulate(
                plan,
                self.prepared.feed,
                self.prepared.pairs,
                start if start is not None else self.request.start,
                None,
                self.prepared.extras,
                must_trade=True,
                cache=self.cache,
            )
        except KineticError as problem:  # reported in the variant's row, not fatal
            if not quiet:
                raise
            return Outcome(variant, None, _first_line(problem))
        notes = (*result.assumptions.warmup[1:], *result.assumptions.warnings)
        metrics = compute_metrics(result).to_dict()
        return Outcome(variant, metrics, None, notes, result.start)

    def _compile(self, variant: Variant) -> Plan:
        spec = switch_off(self.loaded.strategy, variant.addresses)
        loaded = LoadedStrategy(spec, self.loaded.positions)
        plan = build_plan(check(loaded, self.request.overrides), gaps=self.request.gaps)
        require_mode(plan, self.request.mode)
        warmup = self.request.warmup
        return plan if warmup is None else replace(plan, accepted_warmup=warmup)


def _first_line(problem: KineticError) -> str:
    if isinstance(problem, StrategyError):
        errors = [d for d in problem.diagnostics if d.severity == "error"]
        if errors:
            return f"{errors[0].span.location()}: {errors[0].message}"
    return str(problem).splitlines()[0]


_WORKER: dict[str, _Base] = {}


def _start_worker(request: BacktestRequest) -> None:
    _WORKER["base"] = _Base(request, prepare(request), load_file(request.strategy))


def _run_in_worker(variant: Variant, start: pd.Timestamp | None) -> Outcome:
    return _WORKER["base"].run(variant, start)
