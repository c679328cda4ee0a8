"""The calling contract, checked for every registered function.

Each test takes `function` and so runs once per registry entry (see conftest):
a new function is covered the moment it is registered.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kinetic_rules.functions import Function

CUTS = (0, 1, 2, 37, 500, 2999)
PREFIX = 3000  # candles of BTC 5m used for the look-ahead check
# Functions whose value may legitimately be undefined after the warm-up on real data.
MAY_BE_UNDEFINED = {"bars_since"}


def _prefix(cols: dict[str, np.ndarray], stop: int) -> dict[str, np.ndarray]:
    return {k: v[:stop] for k, v in cols.items()}


def test_no_look_ahead(kit: Any, btc: dict[str, np.ndarray], function: Function) -> None:
    """A value never changes when later candles are added: data[:t] agrees with data on < t."""
    cols = _prefix(btc, PREFIX)
    args = kit.sample_args(function, cols)
    full = kit.call(function, cols, args)
    for cut in CUTS:
        part_cols = _prefix(cols, cut)
        part_args = [a[:cut] if isinstance(a, np.ndarray) else a for a in args]
        part = kit.call(function, part_cols, part_args)
        np.testing.assert_array_equal(part, full[:cut], err_msg=f"cut at {cut}")


def test_shape_dtype_and_determinism(
    kit: Any, btc: dict[str, np.ndarray], function: Function
) -> None:
    first = kit.call(function, btc)
    second = kit.call(function, btc)
    assert first.shape == btc["close"].shape
    assert first.dtype == (np.bool_ if function.returns == "bool" else np.float64)
    np.testing.assert_array_equal(first, second)


def test_defined_after_warmup(kit: Any, function: Function) -> None:
    """On real candles a number function has a value on every candle from its warm-up on."""
    if function.returns == "bool" or function.name in MAY_BE_UNDEFINED:
        pytest.skip("true/false functions are never undefined")
    for file in ("BTC_USDT-5m", "SOL_USDT-1h"):
        cols = kit.load(file)
        args = kit.sample_args(function, cols)
        warmup = function.warmup(kit.constants(function, args))
        out = kit.call(function, cols, args)
        assert not np.isnan(out[warmup:]).any(), file


def test_empty_input(kit: Any, function: Function) -> None:
    cols = {name: values[:0] for name, values in kit.load("EURI_USDT-5m").items()}
    out = kit.call(function, cols)
    assert out.shape == (0,)


_hostile = st.one_of(
    st.just(0.0),
    st.just(np.nan),
    st.floats(-5.0, 5.0, allow_nan=False),
    st.floats(0.5, 100.0),
    st.sampled_from([1.0, 2.0, 1e-9, 1e6]),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_never_infinite_nor_warning(kit: Any, function: Function, data: st.DataObject) -> None:
    """Zeros, negatives, NaNs and flat runs give NaN, never inf, and raise no warning.

    pytest turns warnings into errors here, so a stray division warning fails too.
    """
    n = data.draw(st.integers(0, 60), label="n")
    grid = data.draw(hnp.arrays(np.float64, (5, n), elements=_hostile), label="candles")
    cols = dict(zip(("open", "high", "low", "close", "volume"), grid, strict=True))
    args = kit.sample_args(function, cols)
    args = [min(a, 5) if isinstance(a, int) and not isinstance(a, bool) else a for a in args]
    out = kit.call(function, cols, args)
    assert out.shape == (n,)
    if function.returns == "number":
        assert not np.isinf(out).any()
    else:
        assert out.dtype == np.bool_
