"""Arithmetic helpers: abs, min, max, clamp, log, sqrt and step tables."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from kinetic_rules.functions import _core as core
from kinetic_rules.functions import _stream as stream
from kinetic_rules.functions._define import const, define, number, series, table
from kinetic_rules.functions.registry import Array
from kinetic_rules.units import Unit

CATEGORY = "math"
_NONE = const(0)


def _abs(x: Array) -> Array:
    (values,) = core.floats(x)
    return np.abs(values)


def _min(a: Array, b: Array) -> Array:
    x, y = core.floats(a, b)
    return np.minimum(x, y)  # NaN if either is NaN


def _max(a: Array, b: Array) -> Array:
    x, y = core.floats(a, b)
    return np.maximum(x, y)


def _clamp(x: Array, low: Array, high: Array) -> Array:
    values, lo, hi = core.floats(x, low, high)
    out = np.minimum(np.maximum(values, lo), hi)
    out[lo > hi] = np.nan  # contradictory bounds: no answer rather than a silent pick
    return out


def _log(x: Array) -> Array:
    (values,) = core.floats(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(values)
    out[~(values > 0)] = np.nan
    return out


def _sqrt(x: Array) -> Array:
    (values,) = core.floats(x)
    with np.errstate(invalid="ignore"):
        out = np.sqrt(values)
    out[~(values >= 0)] = np.nan
    return out


def check_step_table(thresholds: Sequence[float], values: Sequence[float]) -> None:
    """Raise ValueError with a plain message unless the table can be read unambiguously."""
    if len(thresholds) == 0:
        raise ValueError("step needs at least one threshold")
    if len(thresholds) != len(values):
        raise ValueError(
            f"step needs one value per threshold: {len(thresholds)} thresholds, "
            f"{len(values)} values"
        )
    if any(not np.isfinite(t) for t in thresholds):
        raise ValueError("step thresholds must be finite numbers")
    for before, after in pairwise(thresholds):
        if not before < after:
            raise ValueError(
                f"step thresholds must increase from left to right, but {after:g} "
                f"follows {before:g}"
            )


def _step(
    x: Array, thresholds: tuple[float, ...], values: tuple[float, ...], below: float
) -> Array:
    check_step_table(thresholds, values)
    (xs,) = core.floats(x)
    edges = np.asarray(thresholds, dtype=np.float64)
    table = np.concatenate(([below], np.asarray(values, dtype=np.float64)))
    out = table[np.searchsorted(edges, xs, side="right")]
    out[np.isnan(xs)] = np.nan
    return out


define(
    "abs",
    CATEGORY,
    "Absolute value: the number without its sign, so -3 becomes 3.",
    (series("x", "any number"),),
    _abs,
    _NONE,
    stream=stream.stateless(_abs),
    example="big_move: abs(pct_change(close)) > 2%",
    unit="x",
)

define(
    "min",
    CATEGORY,
    "The smaller of two numbers, candle by candle.",
    (series("a", "a number"), series("b", "another number")),
    _min,
    _NONE,
    stream=stream.stateless(_min),
    example="body_low: min(open, close) > ema(close, 20)",
    unit="a",
    alike=(("a", "b"),),
)

define(
    "max",
    CATEGORY,
    "The larger of two numbers, candle by candle.",
    (series("a", "a number"), series("b", "another number")),
    _max,
    _NONE,
    stream=stream.stateless(_max),
    example="body_high: max(open, close) < ema(close, 20)",
    unit="a",
    alike=(("a", "b"),),
)

define(
    "clamp",
    CATEGORY,
    "Keep a number between a lower and an upper limit: below `low` gives `low`, above "
    "`high` gives `high`. The limits may change from candle to candle; where `low` is "
    "above `high` there is no answer (undefined).",
    (
        series("x", "the number to limit"),
        series("low", "the smallest allowed result"),
        series("high", "the largest allowed result"),
    ),
    _clamp,
    _NONE,
    stream=stream.stateless(_clamp),
    example="stake: clamp(0.02 / (atr(14) / close), 0.005, 0.05)",
    unit="x",
    alike=(("x", "low", "high"),),
)

define(
    "log",
    CATEGORY,
    "Natural logarithm. Undefined for zero and negative numbers.",
    (series("x", "a positive number"),),
    _log,
    _NONE,
    stream=stream.stateless(_log),
    example="log_volume_high: log(volume) > mean(log(volume), 24h) + 1",
    unit=Unit.ANY,
)

define(
    "sqrt",
    CATEGORY,
    "Square root. Undefined for negative numbers.",
    (series("x", "a number that is zero or more"),),
    _sqrt,
    _NONE,
    stream=stream.stateless(_sqrt),
    example="daily_vol: std(log_return(close), 24h) * sqrt(288) > 3%",
    unit=Unit.ANY,
)

define(
    "step",
    CATEGORY,
    "Step table: looks `x` up in a list of thresholds and gives the value paired with the "
    "largest threshold that `x` reaches (threshold <= x). Below the first threshold it "
    "gives `below`. Thresholds must increase from left to right and there must be one "
    "value per threshold. E.g. step(rsi(close, 14), [30, 50, 70], [1, 2, 3]) is 0 under "
    "30, 1 from 30 up to 50, 2 from 50 up to 70 and 3 from 70 on.",
    (
        series("x", "the number to look up"),
        table("thresholds", "the increasing thresholds, e.g. [30, 50, 70]", increasing=True),
        table(
            "values", "the value for each threshold, e.g. [1, 2, 3]", same_length_as="thresholds"
        ),
        number("below", "the value when x is under the first threshold", 0.0),
    ),
    _step,
    _NONE,
    stream=stream.stateless(_step),
    example="stake: step(adx(), [20, 30, 40], [0.01, 0.02, 0.03])",
    unit="values",
    alike=(("x", "thresholds"), ("values", "below")),
)
