"""Streams: fed candles in chunks of any sizes, every function gives one call's numbers.

The live runtime extends each series by the candles of a close instead of computing
its window again (see kinetic_rules/functions/_stream.py). That is only sound if the
values are the very same, so these tests compare bit for bit (NaN equal to NaN): on
real candles with chunkings hypothesis draws, on hostile candles (zeros, NaN, flat
runs, negatives), and with windows long enough to take the block-summed paths.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kinetic_rules.functions import ArgKind, Function

FILES = ("BTC_USDT-5m", "SOL_USDT-1h", "EURI_USDT-5m", "ETH_USDT-1d")
COUNTS = (1, 2, 3, 14, 70, 150)  # periods and windows tried: 70 and 150 sum by blocks


def chunked(
    function: Function, cols: dict[str, np.ndarray], args: list[Any], sizes: list[int]
) -> np.ndarray:
    """The function's stream fed the candles in chunks of `sizes` (the rest in one last chunk)."""
    assert function.stream is not None
    stream = function.stream()
    inputs = [cols[name] for name in function.inputs]
    n = len(cols["close"])
    bounds = [0]
    for size in sizes:
        bounds.append(min(n, bounds[-1] + size))
    bounds.append(n)
    parts = []
    for lo, hi in pairwise(bounds):
        cut = [read_only(a[lo:hi]) for a in inputs]
        given_args = [read_only(a[lo:hi]) if isinstance(a, np.ndarray) else a for a in args]
        parts.append(np.asarray(stream(*cut, *given_args)))
    return np.concatenate(parts) if parts else np.empty(0)


def read_only(values: np.ndarray) -> np.ndarray:
    """As the live evaluator hands them out: a stream must not write into its inputs."""
    view = values.view()
    view.flags.writeable = False
    return view


def with_counts(function: Function, args: list[Any], draw: Any) -> list[Any]:
    """The sample arguments, with every period and window drawn from COUNTS."""
    out = []
    for spec, value in zip(function.args, args, strict=True):
        if spec.kind in (ArgKind.INT, ArgKind.WINDOW):
            value = draw(st.sampled_from(COUNTS), label=spec.name)
        out.append(value)
    return out


def test_every_function_has_a_stream(function: Function) -> None:
    assert function.stream is not None, f"{function.name} has no stream"


_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_SETTINGS
@given(data=st.data())
def test_chunks_of_real_candles_give_one_calls_values(
    kit: Any, function: Function, data: st.DataObject
) -> None:
    cols = kit.load(data.draw(st.sampled_from(FILES), label="file"))
    length = data.draw(st.integers(0, 1200), label="candles")
    cols = {k: v[:length] for k, v in cols.items()}
    args = with_counts(function, kit.sample_args(function, cols), data.draw)
    first = data.draw(st.integers(0, length), label="first chunk")
    sizes = data.draw(st.lists(st.integers(0, 40), max_size=30), label="then")
    whole = kit.call(function, cols, args)
    np.testing.assert_array_equal(chunked(function, cols, args, [first, *sizes]), whole)


_hostile = st.one_of(
    st.just(0.0),
    st.just(np.nan),
    st.floats(-5.0, 5.0, allow_nan=False),
    st.floats(0.5, 100.0),
    st.sampled_from([1.0, 2.0, 1e-9, 1e6, -0.0]),
)


@_SETTINGS
@given(data=st.data())
def test_chunks_of_hostile_candles_give_one_calls_values(
    kit: Any, function: Function, data: st.DataObject
) -> None:
    n = data.draw(st.integers(0, 80), label="n")
    grid = data.draw(hnp.arrays(np.float64, (5, n), elements=_hostile), label="candles")
    cols = dict(zip(("open", "high", "low", "close", "volume"), grid, strict=True))
    args = kit.sample_args(function, cols)
    args = [min(a, 5) if isinstance(a, int) and not isinstance(a, bool) else a for a in args]
    sizes = data.draw(st.lists(st.integers(0, 7), max_size=40), label="chunks")
    whole = kit.call(function, cols, args)
    np.testing.assert_array_equal(chunked(function, cols, args, sizes), whole)


def test_one_candle_at_a_time_over_a_long_run(kit: Any, function: Function) -> None:
    """The live case: a long history first, then candle after candle."""
    cols = {k: v[:2600] for k, v in kit.load("BTC_USDT-5m").items()}
    args = kit.sample_args(function, cols)
    whole = kit.call(function, cols, args)
    np.testing.assert_array_equal(chunked(function, cols, args, [2400, *[1] * 200]), whole)
