"""Every function that names a TA-Lib definition matches TA-Lib on real candles.

The comparison covers every candle where TA-Lib gives a value, not only those
after our warm-up: the seeding (SMA seed for EMA, Wilder's sums for RSI, ATR,
ADX, the shared start of MACD's averages) is reproduced exactly, so there is no
early stretch to excuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import talib

from kinetic_rules.functions import REGISTRY

# EURI is a stablecoin: nearly flat candles stress every division and running sum.
FILES = ("BTC_USDT-5m", "SOL_USDT-5m", "BTC_USDT-1d", "ETH_USDT-1h", "EURI_USDT-5m")
RTOL = 1e-9

Cols = dict[str, np.ndarray]


def _c(cols: Cols) -> tuple[np.ndarray, ...]:
    return cols["high"], cols["low"], cols["close"]


# (our function, its arguments, TA-Lib reference, absolute tolerance as a share of the price)
CASES: list[tuple[str, Callable[[Cols], tuple[Any, ...]], Callable[[Cols], np.ndarray], float]] = [
    ("ema", lambda c: (c["close"], 9), lambda c: talib.EMA(c["close"], 9), 0),
    ("ema", lambda c: (c["close"], 50), lambda c: talib.EMA(c["close"], 50), 0),
    ("sma", lambda c: (c["close"], 20), lambda c: talib.SMA(c["close"], 20), 0),
    ("sma", lambda c: (c["volume"], 7), lambda c: talib.SMA(c["volume"], 7), 0),
    ("wma", lambda c: (c["close"], 10), lambda c: talib.WMA(c["close"], 10), 0),
    ("wma", lambda c: (c["close"], 30), lambda c: talib.WMA(c["close"], 30), 0),
    ("rsi", lambda c: (c["close"], 14), lambda c: talib.RSI(c["close"], 14), 0),
    ("rsi", lambda c: (c["close"], 6), lambda c: talib.RSI(c["close"], 6), 0),
    ("roc", lambda c: (c["close"], 10), lambda c: talib.ROC(c["close"], 10), 0),
    ("roc", lambda c: (c["close"], 1), lambda c: talib.ROC(c["close"], 1), 0),
    ("atr", lambda c: (14,), lambda c: talib.ATR(*_c(c), 14), 0),
    ("atr", lambda c: (5,), lambda c: talib.ATR(*_c(c), 5), 0),
    ("true_range", lambda c: (), lambda c: talib.TRANGE(*_c(c)), 0),
    # MACD is a difference of two price-sized averages: near zero, their last-digit
    # rounding (1e-16 of the price) is a large share of the result, so the tolerance
    # is relative to the price, 1e-9 of it.
    ("macd", lambda c: (c["close"], 12, 26, 9), lambda c: talib.MACD(c["close"])[0], RTOL),
    ("macd_signal", lambda c: (c["close"], 12, 26, 9), lambda c: talib.MACD(c["close"])[1], RTOL),
    ("macd_hist", lambda c: (c["close"], 12, 26, 9), lambda c: talib.MACD(c["close"])[2], RTOL),
    ("macd", lambda c: (c["close"], 5, 35, 5), lambda c: talib.MACD(c["close"], 5, 35, 5)[0], RTOL),
    ("adx", lambda c: (14,), lambda c: talib.ADX(*_c(c), 14), 0),
    ("adx", lambda c: (7,), lambda c: talib.ADX(*_c(c), 7), 0),
    ("plus_di", lambda c: (14,), lambda c: talib.PLUS_DI(*_c(c), 14), 0),
    ("minus_di", lambda c: (14,), lambda c: talib.MINUS_DI(*_c(c), 14), 0),
    ("plus_di", lambda c: (5,), lambda c: talib.PLUS_DI(*_c(c), 5), 0),
    ("bb_upper", lambda c: (c["close"], 20, 2.0), lambda c: talib.BBANDS(c["close"], 20)[0], 0),
    ("bb_middle", lambda c: (c["close"], 20, 2.0), lambda c: talib.BBANDS(c["close"], 20)[1], 0),
    ("bb_lower", lambda c: (c["close"], 20, 2.0), lambda c: talib.BBANDS(c["close"], 20)[2], 0),
    (
        "bb_lower",
        lambda c: (c["close"], 10, 2.5),
        lambda c: talib.BBANDS(c["close"], 10, 2.5, 2.5)[2],
        0,
    ),
    ("bb_width", lambda c: (c["close"], 20, 2.0), lambda c: _bb_width(c["close"], 20, 2.0), 0),
    ("obv", lambda c: (), lambda c: talib.OBV(c["close"], c["volume"]), 0),
    ("stoch_k", lambda c: (14, 3), lambda c: talib.STOCH(*_c(c), 14, 3, 0, 3, 0)[0], 0),
    ("stoch_d", lambda c: (14, 3, 3), lambda c: talib.STOCH(*_c(c), 14, 3, 0, 3, 0)[1], 0),
    ("stoch_d", lambda c: (5, 2, 4), lambda c: talib.STOCH(*_c(c), 5, 2, 0, 4, 0)[1], 0),
    ("mean", lambda c: (c["close"], 48), lambda c: talib.SMA(c["close"], 48), 0),
    ("sum", lambda c: (c["volume"], 12), lambda c: talib.SUM(c["volume"], 12), 0),
    ("lowest", lambda c: (c["low"], 20), lambda c: talib.MIN(c["low"], 20), 0),
    ("highest", lambda c: (c["high"], 20), lambda c: talib.MAX(c["high"], 20), 0),
    ("std", lambda c: (c["close"], 20), lambda c: talib.STDDEV(c["close"], 20, 1), 0),
    ("std", lambda c: (c["close"], 5), lambda c: talib.STDDEV(c["close"], 5, 1), 0),
    ("std", lambda c: (c["close"], 60), lambda c: talib.STDDEV(c["close"], 60, 1), 0),
    ("change", lambda c: (c["close"], 3), lambda c: talib.MOM(c["close"], 3), 0),
    ("pct_change", lambda c: (c["close"], 1), lambda c: talib.ROCP(c["close"], 1), 0),
    ("pct_change", lambda c: (c["close"], 12), lambda c: talib.ROCP(c["close"], 12), 0),
]

# Keltner channels have no TA-Lib function; they are defined from two that do.
CASES += [
    (
        "keltner_upper",
        lambda c: (20, 2.0, 10),
        lambda c: talib.EMA(c["close"], 20) + 2.0 * talib.ATR(*_c(c), 10),
        0,
    ),
    ("keltner_middle", lambda c: (20, 2.0, 10), lambda c: talib.EMA(c["close"], 20), 0),
    (
        "keltner_lower",
        lambda c: (10, 1.5, 14),
        lambda c: talib.EMA(c["close"], 10) - 1.5 * talib.ATR(*_c(c), 14),
        0,
    ),
]

# A correlation lies in [−1, 1]; compared absolutely, since near 0 a relative
# comparison would only measure the rounding of TA-Lib's running sums.
CORRELATION_CASES = [
    (
        "correlation",
        lambda c: (c["close"], c["open"], 20),
        lambda c: talib.CORREL(c["close"], c["open"], 20),
    ),
    (
        "correlation",
        lambda c: (c["close"], c["volume"], 50),
        lambda c: talib.CORREL(c["close"], c["volume"], 50),
    ),
]


# TA-Lib smooths %K with a running sum, which leaves residues such as 2e-14 where the
# exact average of three zeros is 0; in percent points, 1e-9 is far below any meaning.
ABSOLUTE = {"stoch_k": 1e-9, "stoch_d": 1e-9}


def _bb_width(close: np.ndarray, period: int, deviations: float) -> np.ndarray:
    upper, middle, lower = talib.BBANDS(close, period, deviations, deviations)
    return (upper - lower) / middle


def _compare(kit: Any, name: str, file: str, args: Any, reference: Any, atol: float) -> None:
    cols = kit.load(file)
    function = REGISTRY.get(name)
    assert function is not None
    ours = kit.call(function, cols, list(args(cols)))
    expected = reference(cols)
    defined = ~np.isnan(expected)
    assert defined.any(), "the reference never has a value: the case tests nothing"
    assert not np.isnan(ours[defined]).any(), "undefined where TA-Lib has a value"
    np.testing.assert_allclose(ours[defined], expected[defined], rtol=RTOL, atol=atol)
    # Where we are defined early (macd line, stoch %K start before TA-Lib's joint output),
    # we must still be defined from our warm-up on.
    warmup = function.warmup(kit.constants(function, list(args(cols))))
    assert not np.isnan(ours[warmup:]).any()


@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize(
    ("name", "args", "reference", "price_share"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_matches_talib(
    kit: Any, file: str, name: str, args: Any, reference: Any, price_share: float
) -> None:
    atol = max(price_share * float(np.median(kit.load(file)["close"])), ABSOLUTE.get(name, 0.0))
    _compare(kit, name, file, args, reference, atol)


@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize(
    ("name", "args", "reference"),
    CORRELATION_CASES,
    ids=[f"correlation-{i}" for i in range(len(CORRELATION_CASES))],
)
def test_correlation_matches_talib(
    kit: Any, file: str, name: str, args: Any, reference: Any
) -> None:
    _compare(kit, name, file, args, reference, 1e-9)


def test_every_talib_function_is_compared() -> None:
    compared = {case[0] for case in CASES} | {case[0] for case in CORRELATION_CASES}
    claimed = {f.name for f in REGISTRY.all() if f.talib}
    assert claimed <= compared, f"no TA-Lib comparison for {sorted(claimed - compared)}"


def test_talib_names_exist() -> None:
    for function in REGISTRY.all():
        if function.talib:
            assert hasattr(talib, function.talib), function.name
