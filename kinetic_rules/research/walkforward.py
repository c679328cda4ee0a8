"""Walk-forward validation: optimise on a training span, trade the span after it, move on.

Each training window gets its own study, run on candles cut at the window's end: the
search cannot read a candle of the test window that follows. The chosen values then trade
the test window (its indicators warmed up on the candles before it, as in any backtest).
The test windows' equity curves, stitched end to end, are the out-of-sample result: what
re-optimising on this schedule would have earned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from kinetic_rules.backtest.metrics import Metrics, compute_metrics, equity_curve
from kinetic_rules.backtest.runner import BacktestRequest
from kinetic_rules.engine.model import BacktestResult
from kinetic_rules.errors import ConfigError, Diagnostic, Source, Span, StrategyError
from kinetic_rules.research.objectives import objective_value
from kinetic_rules.research.overfit import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from kinetic_rules.research.run import Checked, OptimizeOptions, WindowSearch, run_search
from kinetic_rules.research.space import Value, current_values
from kinetic_rules.research.trials import TrialRunner, build_context
from kinetic_rules.timeframes import format_duration, parse_duration

MIN_WINDOW_DAYS = 2  # the ratios are computed from daily returns: fewer days measure nothing
MAX_WINDOWS = 500


@dataclass(frozen=True)
class Schedule:
    train: pd.Timedelta
    test: pd.Timedelta
    step: pd.Timedelta
    anchored: bool = False


@dataclass(frozen=True)
class Window:
    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp  # exclusive: the first candle of the test window
    test_end: pd.Timestamp  # exclusive


@dataclass
class WindowResult:
    window: Window
    search: WindowSearch
    params: dict[str, Value]
    in_sample: dict[str, float | None]
    out_of_sample: Metrics
    test_result: BacktestResult
    pbo: float | None
    deflated_sharpe: float | None


@dataclass
class WalkForwardResult:
    schedule: Schedule
    windows: list[WindowResult] = field(default_factory=list)
    equity: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    starting_balance: float = 0.0

    def stitched_return(self) -> float | None:
        if len(self.equity) == 0 or not self.starting_balance:
            return None
        return float(self.equity.iloc[-1] / self.starting_balance - 1.0)


def parse_schedule(train: str, test: str, step: str | None, anchored: bool) -> Schedule:
    """The three durations, each checked where it was typed."""

    def duration(flag: str, text: str) -> pd.Timedelta:
        try:
            seconds = parse_duration(text)
        except ValueError as bad:
            raise _flag_error(flag, text, str(bad)) from None
        if seconds < MIN_WINDOW_DAYS * 86_400:
            raise _flag_error(
                flag,
                text,
                f"{flag} {text} is shorter than {MIN_WINDOW_DAYS} days: the metrics are "
                "computed from daily returns",
            )
        return pd.Timedelta(seconds=seconds)

    test_span = duration("--test", test)
    return Schedule(
        duration("--train", train),
        test_span,
        duration("--step", step) if step is not None else test_span,
        anchored,
    )


def _flag_error(flag: str, text: str, message: str) -> StrategyError:
    span = Span(Source(flag, text), 0, len(text))
    return StrategyError([Diagnostic("error", "window", message, span)])


def plan_windows(schedule: Schedule, first: pd.Timestamp, end: pd.Timestamp) -> list[Window]:
    """Windows from the first tradable candle to the end of the data (exclusive)."""
    windows: list[Window] = []
    offset = pd.Timedelta(0)
    while len(windows) < MAX_WINDOWS:
        train_start = first if schedule.anchored else first + offset
        train_end = first + offset + schedule.train
        test_end = train_end + schedule.test
        if test_end > end:
            break
        windows.append(Window(len(windows), train_start, train_end, test_end))
        offset += schedule.step
    return windows


def walk_forward(
    checked: Checked,
    request: BacktestRequest,
    schedule: Schedule,
    options: OptimizeOptions,
    url: str,
    progress: Callable[[str, int, int, float | None], None] | None = None,
) -> WalkForwardResult:
    """Every window in turn; errors about the windows come before the first trial."""
    runner = TrialRunner(build_context(request), keep_series=False)
    whole = runner.backtest(current_values(checked.loaded, checked.space))
    first, end = whole.start, whole.end + pd.Timedelta(seconds=_step_seconds(whole))
    if request.start is not None and request.start < first:
        raise ConfigError(
            f"--timerange starts {request.start:%Y-%m-%d %H:%M}, inside the strategy's warm-up: "
            f"the first training window can start at {first:%Y-%m-%d %H:%M}; move the start, or "
            "accept a shorter warm-up with --warmup"
        )
    windows = plan_windows(schedule, first, end)
    if not windows:
        need = schedule.train + schedule.test
        raise ConfigError(
            f"no walk-forward window fits: the data that can trade runs from "
            f"{first:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} "
            f"({format_duration(int((end - first).total_seconds()))}), and one window needs "
            f"--train + --test = {format_duration(int(need.total_seconds()))}"
        )
    out = WalkForwardResult(schedule, starting_balance=whole.assumptions.starting_balance)
    name = checked.loaded.strategy.metadata.name
    for window in windows:
        out.windows.append(
            run_window(checked, request, window, options, url, f"{name}/walkforward", progress)
        )
    out.equity = stitch([w.test_result for w in out.windows], out.starting_balance)
    return out


def train_window(
    checked: Checked,
    request: BacktestRequest,
    window: Window,
    options: OptimizeOptions,
    url: str,
    study_prefix: str,
    progress: Callable[[str, int, int, float | None], None] | None = None,
) -> WindowSearch:
    """The search of one training span, on candles cut at its end: nothing after it is
    read, so the test window cannot leak into the choice."""
    train = replace(request, start=window.train_start, end=window.train_end)
    label = f"window {window.index + 1}"

    def report(done: int, total: int, best: float | None, _params: dict[str, Any]) -> None:
        if progress is not None:
            progress(label, done, total, best)

    return run_search(
        checked,
        build_context(train),
        options,
        f"{study_prefix}/{window.index}",
        f"{window.train_start}..{window.train_end}",
        url,
        report if progress is not None else None,
    )


def in_sample(found: WindowSearch) -> dict[str, float | None]:
    """The figures of the chosen trial on its training span (the file's values when no
    trial met the constraints)."""
    best = found.result.best
    if best is None:
        return dict(found.baseline.values)
    figures = {k: v for k, v in best.user_attrs.items() if isinstance(v, float | int | type(None))}
    for name, value in figures.items():  # an idle trial's ratios count as 0, as in the search
        figures[name] = objective_value(figures, name) if value is None else value
    return figures


def run_window(
    checked: Checked,
    request: BacktestRequest,
    window: Window,
    options: OptimizeOptions,
    url: str,
    study_prefix: str,
    progress: Callable[[str, int, int, float | None], None] | None = None,
) -> WindowResult:
    """Optimise on the training span, then trade the test span with the chosen values."""
    found = train_window(checked, request, window, options, url, study_prefix, progress)
    test = replace(request, start=window.train_end, end=window.test_end)
    result = TrialRunner(build_context(test), keep_series=False).backtest(found.best_values)
    pbo, dsr = overfitting(found)
    return WindowResult(
        window,
        found,
        found.best_values,
        in_sample(found),
        compute_metrics(result),
        result,
        pbo,
        dsr,
    )


def overfitting(found: WindowSearch) -> tuple[float | None, float | None]:
    """PBO over the trials' daily returns, and the deflated Sharpe of the best trial;
    None where the study holds too little to say (under two trials or four days)."""
    returns = [
        t.user_attrs.get("daily_returns") or [] for t in found.result.trials if t.value is not None
    ]
    length = min((len(r) for r in returns), default=0)
    pbo: float | None = None
    matrix = np.array([r[:length] for r in returns], dtype=float).T
    if len(returns) >= 2 and length >= 4 and np.ptp(matrix, axis=1).any():
        splits = min(16, length - length % 2)
        pbo = probability_of_backtest_overfitting(matrix, splits)
    best = found.result.best
    dsr: float | None = None
    sharpes = [_daily_sharpe(r) for r in returns]
    finite = [s for s in sharpes if s is not None]
    if best is not None and len(finite) >= 2:
        chosen = np.asarray(best.user_attrs.get("daily_returns") or [], dtype=float)
        sharpe = _daily_sharpe(list(chosen))
        if sharpe is not None and len(chosen) >= 3:
            skew, kurt = _moments(chosen)
            try:
                dsr = deflated_sharpe_ratio(
                    sharpe, len(finite), float(np.var(finite, ddof=1)), len(chosen), skew, kurt
                )
            except ValueError:
                dsr = None
    return pbo, dsr


def _daily_sharpe(returns: list[float]) -> float | None:
    values = np.asarray(returns, dtype=float)
    if len(values) < 2:
        return None
    spread = float(values.std(ddof=1))
    return float(values.mean()) / spread if spread > 0 else 0.0  # flat: nothing earned


def _moments(values: np.ndarray) -> tuple[float, float]:
    centred = values - values.mean()
    spread = float(np.sqrt(np.mean(centred**2)))
    if spread == 0:
        return 0.0, 3.0
    return float(np.mean(centred**3)) / spread**3, float(np.mean(centred**4)) / spread**4


def stitch(results: list[BacktestResult], starting: float) -> pd.Series:
    """The test windows' equity curves end to end, each window starting from where the
    last one ended (compounded), as one out-of-sample account."""
    pieces: list[pd.Series] = []
    level = starting
    for result in results:
        curve = equity_curve(result)
        if len(curve) == 0:
            continue
        own = result.assumptions.starting_balance or starting
        scaled = curve * (level / own)
        pieces.append(scaled)
        level = float(scaled.iloc[-1])
    if not pieces:
        return pd.Series(dtype=float)
    joined = pd.concat(pieces)
    kept: pd.Series = joined[~joined.index.duplicated(keep="last")]
    return kept


def _step_seconds(result: BacktestResult) -> int:
    from kinetic_rules.timeframes import timeframe_seconds

    return timeframe_seconds(result.timeframe)


def stability(windows: list[WindowResult]) -> dict[str, dict[str, float | None]]:
    """Per param: mean, spread and the relative spread of the chosen values across windows
    (a knob whose best value jumps around is fitted to noise)."""
    out: dict[str, dict[str, float | None]] = {}
    names = list(windows[0].params) if windows else []
    for name in names:
        values = [w.params.get(name) for w in windows]
        numbers = [
            float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if len(numbers) != len(values) or not numbers:
            distinct = len({str(v) for v in values})
            out[name] = {"distinct": float(distinct), "mean": None, "std": None, "cv": None}
            continue
        mean = float(np.mean(numbers))
        std = float(np.std(numbers, ddof=1)) if len(numbers) > 1 else 0.0
        cv = std / abs(mean) if mean and math.isfinite(mean) else None
        out[name] = {"distinct": float(len(set(numbers))), "mean": mean, "std": std, "cv": cv}
    return out
