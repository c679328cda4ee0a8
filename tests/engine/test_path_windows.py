"""A trade's path is resolved in windows of candles that grow until the trade ends. Where
the windows start and end is the engine's business: the fills must be the same for any
first window, down to one candle, liquidations included."""

from __future__ import annotations

from unittest.mock import patch

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.backtest.runner import simulate
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.engine import paths
from kinetic_rules.engine.futures import MarketExtras
from kinetic_rules.engine.model import LIQUIDATION, BacktestResult
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_text

Row = tuple[float, float, float, float, float]
FLAT: Row = (100.0, 101.0, 99.0, 100.0, 0.0)
SIGNAL: Row = (100.0, 101.0, 99.0, 100.0, 200.0)
RULES = (
    "entry:\n  long:\n    go: volume > 100\n  short:\n    go: volume > 150\n"
    "exit:\n  long:\n    stale: bars_held >= 20m and max_profit < 1%\n"
    "  short:\n    stale: bars_held >= 20m and max_profit < 1%\n"
    "stoploss:\n  initial: entry_price * (1 - side * 20%)\n  trailing:\n"
    "    breakeven: {activate: profit > 2%, level: entry_price}\n"
    "    tighten: {activate: max_profit > 3%, level: close * (1 - side * 2%)}\n"
    "take_profit:\n  first: {when: profit > 1.5%, close: 40%}\n"
    "  second: {when: profit > 4%, close: 60%}\n"
)


def run(rows: list[Row], leverage: int, orders: str, body: str = RULES) -> BacktestResult:
    text = (
        "metadata: {name: t}\ntimeframe: 5m\nmarket: {type: futures, pairs: [X/USDT]}\n"
        f"orders: {orders}\nsizing: {{stake: 10%}}\nleverage: {leverage}\n"
        "backtest: {starting_balance: 1000, fee: 0, slippage: 0}\n" + body
    )
    plan = build_plan(check(load_text(text, "t.yaml")))
    index = pd.date_range("2024-01-01", periods=len(rows), freq="5min", tz="UTC", name="date")
    candles = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], index=index)
    extras = MarketExtras(funding=lambda pair: None, mark=lambda pair, tf: None, rules=None)
    return simulate(plan, lambda pair, tf: candles, ["X/USDT"], extras=extras)


def fills(result: BacktestResult) -> list[list[tuple[object, ...]]]:
    return [[(f.time, f.reason, f.price, f.amount) for f in trade.fills] for trade in result.trades]


def walk(steps: list[tuple[float, float]], signals: list[bool]) -> list[Row]:
    rows, price = [FLAT], 100.0
    for (step, gap), signal in zip(steps, signals, strict=True):
        start = price * (1 + gap)
        new = start * (1 + step)
        high, low = max(start, new) * 1.004, min(start, new) * 0.996
        rows.append((start, high, low, new, 200.0 if signal else 0.0))
        price = new
    return rows


moves = st.tuples(st.floats(-0.04, 0.04), st.sampled_from([0.0, 0.0, 0.0, -0.12, 0.12]))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(moves, min_size=3, max_size=50).flatmap(
        lambda steps: st.tuples(
            st.just(steps), st.lists(st.booleans(), min_size=len(steps), max_size=len(steps))
        )
    ),
    st.sampled_from([10, 2]),  # liquidated after a fall of about 10%, or of about 50%
    st.sampled_from(["{entry: market, exit: market}", "{entry: market, exit: limit}"]),
)
def test_fills_do_not_depend_on_the_first_window(
    walked: tuple[list[tuple[float, float]], list[bool]], leverage: int, orders: str
) -> None:
    rows = walk(*walked)
    with patch.object(paths, "FIRST_WINDOW", 10_000):
        whole = fills(run(rows, leverage, orders))
    for first in (1, 2, 3):
        with patch.object(paths, "FIRST_WINDOW", first):
            assert fills(run(rows, leverage, orders)) == whole


def test_a_liquidation_at_the_open_comes_before_a_fill_decided_at_a_windows_last_close() -> None:
    # 10× long from 100 (liquidated at 90.45): the take-profit is decided at the entry
    # candle's close, and the next candle opens at 80, past the liquidation price.
    body = (
        "entry:\n  long:\n    go: volume > 100\n"
        "take_profit:\n  all: {when: profit > 1%, close: 100%}\n"
    )
    rows = [FLAT, SIGNAL, (100, 103, 99, 102, 0), (80, 81, 79, 80, 0), FLAT]
    for first in (1, 2, 256):
        with patch.object(paths, "FIRST_WINDOW", first):
            (trade,) = run(rows, 10, "{entry: market, exit: market}", body).trades
        assert trade.exit_reason == LIQUIDATION
