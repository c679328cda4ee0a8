"""Windows written as durations cover time, across missing candles too.

Under the `keep` gap policy the candles of a series are the ones held; a window of
24 candles reaches back past a hole. A window the file wrote as a duration
(`mean(volume, 6h)`) should instead cover six hours. So, on candles that have a
hole, such a call is evaluated on the time grid — one row per candle that should
exist — with each missing candle marked so that the reduction leaves it out, and
the values of the real candles are taken back:

- `sum` counts a missing candle as 0, `highest` as -inf, `lowest` as +inf, `any` and
  `count` as false, `all` as true; `mean` is the sum over the candles held in the
  window divided by their number;
- functions of the candles themselves (`vwap`, the volume profile) see a missing
  candle as one where nothing traded (volume 0 at the previous close);
- the others (`std`, `zscore`, `percentile_rank`, `correlation`) cannot leave a value
  out: they are undefined while a missing candle is inside their window.

Batch and live evaluation use the same grid and the same functions (the live side
feeds the function's stream one grid chunk at a time; compile/interpret.py makes both
calls), so they agree bit for bit.
A series with no hole is evaluated as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kinetic_rules.functions import REGISTRY
from kinetic_rules.functions.registry import Function

PRICE_INPUTS = frozenset({"open", "high", "low", "close"})


@dataclass(frozen=True)
class TimeForm:
    via: str  # the function evaluated on the grid
    neutral: Any  # what a missing candle is in its series argument (None: undefined)
    per_candle_held: bool = False  # divide by the candles held in the window (mean)


_FORMS = {
    "sum": TimeForm("sum", 0.0),
    "mean": TimeForm("sum", 0.0, per_candle_held=True),
    "highest": TimeForm("highest", -np.inf),
    "lowest": TimeForm("lowest", np.inf),
    "any": TimeForm("any", False),
    "count": TimeForm("count", False),
    "all": TimeForm("all", True),
}


def time_form(name: str) -> TimeForm:
    return _FORMS.get(name, TimeForm(name, None))


@dataclass(frozen=True)
class Grid:
    """Where real candles sit on the grid of every candle that should exist."""

    positions: np.ndarray  # grid row of each real candle
    size: int

    @staticmethod
    def of(times: np.ndarray, step: int, before: int | None = None) -> Grid:
        """The grid from `before` (exclusive; a candle held earlier) or the first candle."""
        origin = times[0] if before is None else before + step
        positions = (np.asarray(times, dtype=np.int64) - origin) // step
        return Grid(positions, int(positions[-1]) + 1 if len(positions) else 0)


def has_hole(times: np.ndarray, step: int) -> bool:
    return len(times) > 1 and bool((np.diff(times) > step).any())


def spread_series(values: np.ndarray, grid: Grid, neutral: Any) -> np.ndarray:
    """A series on the grid: its values on real candles, `neutral` on missing ones."""
    if values.dtype == bool:
        out = np.full(grid.size, bool(neutral) if neutral is not None else False)
    else:
        out = np.full(grid.size, np.nan if neutral is None else float(neutral))
    out[grid.positions] = values
    return out


def spread_candles(
    name: str, values: np.ndarray, closes: np.ndarray, grid: Grid, previous: float
) -> np.ndarray:
    """A candle column on the grid: a missing candle traded nothing at the last close."""
    if name not in PRICE_INPUTS:
        out = np.zeros(grid.size)
        out[grid.positions] = values
        return out
    held = np.searchsorted(grid.positions, np.arange(grid.size), side="right") - 1
    carried = np.asarray(np.r_[previous, closes][held + 1], dtype=np.float64)
    carried[grid.positions] = values
    return carried


def evaluate_on_grid(
    function: Function,
    inputs: dict[str, np.ndarray],
    closes: np.ndarray,
    args: Sequence[Any],
    grid: Grid,
    previous_close: float,
    run: Callable[[Function, list[Any]], np.ndarray],
    count: Callable[[list[Any]], np.ndarray] | None,
) -> np.ndarray:
    """The call's values on the real candles, computed on the grid by `run` (a batch call
    or a stream) — shared by the batch and the live evaluator so that both agree."""
    form = time_form(function.name)
    target = REGISTRY.get(form.via)
    assert target is not None
    spread: list[Any] = [
        spread_candles(name, inputs[name], closes, grid, previous_close) for name in function.inputs
    ]
    for value in args:
        if isinstance(value, np.ndarray):
            spread.append(spread_series(value, grid, form.neutral))
        else:
            spread.append(value)
    values = np.asarray(run(target, spread))
    if form.per_candle_held:
        assert count is not None
        window = next(a for a in args if not isinstance(a, np.ndarray))
        real = np.zeros(grid.size)
        real[grid.positions] = 1.0
        held = np.asarray(count([real, window]))
        with np.errstate(all="ignore"):
            values = np.where(held > 0, values / held, np.nan)
    return np.asarray(values[grid.positions])
