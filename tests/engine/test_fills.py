"""The fill model on hand-made candles, where every price can be worked out by hand."""

from __future__ import annotations

from itertools import pairwise

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.backtest.runner import simulate
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.engine.model import BacktestResult
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_text

FEE, SLIP = 0.001, 0.0005


def candles(rows: list[tuple[float, float, float, float, float]]) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(rows), freq="5min", tz="UTC", name="date")
    return pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], index=index)


def run(body: str, rows: list[tuple[float, float, float, float, float]]) -> BacktestResult:
    text = (
        "metadata: {name: t}\ntimeframe: 5m\nmarket: {pairs: [X/USDT]}\n"
        "portfolio: {max_open_trades: 1}\nsizing: {stake: 10%}\n"
        f"backtest: {{starting_balance: 1000, fee: {FEE}, slippage: {SLIP}}}\n" + body
    )
    plan = build_plan(check(load_text(text, "t.yaml")))
    frame = candles(rows)
    return simulate(plan, lambda pair, tf: frame, ["X/USDT"])


MARKET = "orders: {entry: market, exit: market}\n"
ENTER_ON_VOLUME = "entry:\n  long:\n    go: volume > 100\n"
STOP_10 = "stoploss:\n  initial: entry_price - 10\n"
FLAT = (100.0, 101.0, 99.0, 100.0, 0.0)
SIGNAL = (100.0, 101.0, 99.0, 100.0, 200.0)


def test_market_entry_at_next_open_and_stop_at_its_price() -> None:
    result = run(
        MARKET + ENTER_ON_VOLUME + STOP_10,
        [FLAT, SIGNAL, (100, 102, 95, 101, 0), (101, 103, 80, 90, 0), FLAT],
    )
    (trade,) = result.trades
    entry = 100 * (1 + SLIP)
    assert trade.entry_time == pd.Timestamp("2024-01-01 00:10", tz="UTC")
    assert trade.entry_price == pytest.approx(entry)
    assert trade.initial_stop == pytest.approx(entry - 10)
    assert trade.exit_reason == "stop_loss"
    exit_price = (entry - 10) * (1 - SLIP)
    assert trade.exit_price == pytest.approx(exit_price)
    amount = 100.0 / entry  # 10% of 1000
    fees = entry * amount * FEE + exit_price * amount * FEE
    assert trade.profit == pytest.approx((exit_price - entry) * amount - fees)


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    result = run(
        MARKET + ENTER_ON_VOLUME + STOP_10,
        [FLAT, SIGNAL, (100, 102, 95, 101, 0), (85, 86, 80, 84, 0), FLAT],
    )
    (trade,) = result.trades
    assert trade.exit_price == pytest.approx(85 * (1 - SLIP))
    assert trade.exit_time == pd.Timestamp("2024-01-01 00:15", tz="UTC")


def test_the_stop_is_checked_on_the_entry_candle() -> None:
    result = run(MARKET + ENTER_ON_VOLUME + STOP_10, [FLAT, SIGNAL, (100, 101, 85, 95, 0), FLAT])
    (trade,) = result.trades
    assert trade.exit_reason == "stop_loss" and trade.exit_time == trade.entry_time


TRAIL = STOP_10 + "  trailing:\n    t:\n      activate: profit > 5%\n      level: close - 5\n"


def test_trailing_activates_on_a_close_and_never_loosens() -> None:
    rows = [
        FLAT, SIGNAL,
        (100, 104, 99, 104, 0),  # profit 3.9%: not active
        (104, 107, 103, 106, 0),  # profit 5.9% at close: stop → 101
        (106, 106, 102, 103, 0),  # level 98 would loosen: stop stays 101
        (103, 104, 100, 101, 0),  # low 100 ≤ 101: trailing stop
        FLAT,
    ]  # fmt: skip
    result = run(MARKET + ENTER_ON_VOLUME + TRAIL, rows)
    (trade,) = result.trades
    assert trade.exit_reason == "trailing_stop"
    assert trade.stop == pytest.approx(101)
    assert trade.exit_time == pd.Timestamp("2024-01-01 00:25", tz="UTC")
    assert trade.exit_price == pytest.approx(101 * (1 - SLIP))


def test_an_exit_signal_closes_at_the_next_open() -> None:
    body = MARKET + ENTER_ON_VOLUME + "exit:\n  long:\n    weak: close < 97\n"
    result = run(body, [FLAT, SIGNAL, (100, 101, 96, 96.5, 0), (96, 97, 95, 96, 0), FLAT])
    (trade,) = result.trades
    assert trade.exit_reason == "weak"
    assert trade.exit_price == pytest.approx(96 * (1 - SLIP))


def test_trades_open_at_the_end_close_at_the_last_close_labelled_so() -> None:
    result = run(MARKET + ENTER_ON_VOLUME, [FLAT, SIGNAL, FLAT, (100, 103, 99, 102, 0)])
    (trade,) = result.trades
    assert trade.exit_reason == "end_of_data" and trade.exit_price == pytest.approx(102)


def test_limit_entries_fill_only_when_the_price_trades_through() -> None:
    body = ENTER_ON_VOLUME + "orders: {entry: limit, exit: market, timeouts: {entry: 10m}}\n"
    filled = run(body, [FLAT, SIGNAL, (100.5, 101, 99.5, 100, 0), FLAT])
    assert filled.trades[0].entry_price == pytest.approx(100)  # the limit: the signal's close
    never = run(
        body,
        [FLAT, SIGNAL, (101, 102, 100.5, 101, 0), (101, 102, 100, 101, 0), (101, 102, 99, 101, 0)],
    )
    assert never.trades == []  # 10 minutes = 2 candles without trading through: cancelled


TAKE = (
    "take_profit:\n  first: {when: profit > 2%, close: 40%}\n"
    "  second: {when: profit > 4%, close: 60%}\n"
)


def test_take_profits_close_shares_in_order_at_the_next_open() -> None:
    rows = [
        FLAT,
        SIGNAL,
        (100, 103, 99, 102.5, 0),
        (103, 106, 102, 105, 0),
        (105.5, 106, 105, 105, 0),
        FLAT,
    ]
    result = run(MARKET + ENTER_ON_VOLUME + TAKE, rows)
    (trade,) = result.trades
    closing = [f for f in trade.fills if f.reason != "entry"]
    assert [f.reason for f in closing] == ["first", "second"]
    assert [f.price for f in closing] == pytest.approx([103 * (1 - SLIP), 105.5 * (1 - SLIP)])
    assert sum(f.amount for f in closing) == pytest.approx(trade.amount)
    assert closing[0].amount == pytest.approx(0.4 * trade.amount)


walk = st.lists(st.floats(-0.03, 0.03), min_size=5, max_size=60)


@settings(max_examples=60, deadline=None)
@given(walk)
def test_trailing_stop_never_decreases_and_take_profits_keep_their_order(
    steps: list[float],
) -> None:
    rows, price = [FLAT, SIGNAL], 100.0
    for step in steps:
        new = price * (1 + step)
        rows.append((price, max(price, new) * 1.002, min(price, new) * 0.998, new, 0.0))
        price = new
    body = MARKET + ENTER_ON_VOLUME + TRAIL.replace("close - 5", "close * 0.97") + TAKE
    result = run(body, rows)
    trade = result.trades[0]
    stops = []
    for cut in range(3, len(rows) + 1):
        partial = run(body, rows[:cut]).trades[0]
        stops.append(partial.stop)
        if partial.exit_reason != "end_of_data":
            break
    assert all(b >= a for a, b in pairwise(stops))
    reasons = [f.reason for f in trade.fills if f.reason in ("first", "second")]
    assert reasons in ([], ["first"], ["first", "second"])


def test_take_profits_firing_on_one_close_fill_in_file_order() -> None:
    both = (
        "take_profit:\n  first: {when: profit > 1%, close: 40%}\n"
        "  second: {when: profit > 2%, close: 30%}\n"  # a smaller share must not jump the queue
    )
    rows = [FLAT, SIGNAL, (100, 104, 99, 103, 0), (103.5, 104, 103, 103, 0), FLAT]
    result = run(MARKET + ENTER_ON_VOLUME + both, rows)
    reasons = [f.reason for f in result.trades[0].fills]
    assert reasons[1:3] == ["first", "second"]


def test_a_duration_in_a_rule_counts_candles() -> None:
    body = MARKET + ENTER_ON_VOLUME + "exit:\n  long:\n    held: bars_held >= 15m\n"
    result = run(body, [FLAT, SIGNAL, FLAT, FLAT, FLAT, FLAT, FLAT])
    (trade,) = result.trades
    assert trade.exit_reason == "held"
    assert trade.exit_time - trade.entry_time == pd.Timedelta("20min")  # decided after 3 candles
