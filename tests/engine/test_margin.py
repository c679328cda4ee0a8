"""Futures margin and liquidation in the trade path: hand-made candles where every price
can be worked out, then real candles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kinetic_rules.backtest.runner import simulate
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.engine.model import LIQUIDATION, BacktestResult, Trade
from kinetic_rules.lang.checker import check
from kinetic_rules.margin import beyond_liquidation, liquidation_price
from kinetic_rules.spec.loader import load_text
from tests.conftest import fixture_candles

FEE = 0.001
Row = tuple[float, float, float, float, float]
FLAT: Row = (100.0, 101.0, 99.0, 100.0, 0.0)
SIGNAL: Row = (100.0, 101.0, 99.0, 100.0, 200.0)
LONG_LIQUIDATION = 100.0 * (1 - 1 / 10) / (1 - 0.005)  # 10×, maintenance margin 0.5%
SHORT_LIQUIDATION = 100.0 * (1 + 1 / 10) / (1 + 0.005)


def run(
    body: str, rows: list[Row], market: str = "futures", leverage: float = 10
) -> BacktestResult:
    """One pair, a market entry at the open after the signal (at 100), 10× leverage and a
    margin of 100 (10% of 1000): 10 units, worth 1000."""
    text = (
        f"metadata: {{name: t}}\ntimeframe: 5m\nmarket: {{type: {market}, pairs: [X/USDT]}}\n"
        f"orders: {{entry: market, exit: market}}\nsizing: {{stake: 10%}}\nleverage: {leverage}\n"
        f"backtest: {{starting_balance: 1000, fee: {FEE}, slippage: 0}}\n" + body
    )
    plan = build_plan(check(load_text(text, "t.yaml")))
    index = pd.date_range("2024-01-01", periods=len(rows), freq="5min", tz="UTC", name="date")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], index=index)
    return simulate(plan, lambda pair, tf: frame, ["X/USDT"])


LONG = "entry:\n  long:\n    go: volume > 100\n"
SHORT = "entry:\n  short:\n    go: volume > 100\n"
ENTRY_FEE = 100.0 * 10 * FEE
FIVE = pd.Timedelta("5min")


def only(result: BacktestResult) -> Trade:
    (trade,) = result.trades
    return trade


def test_a_long_is_liquidated_where_its_margin_runs_out_losing_the_margin() -> None:
    trade = only(run(LONG, [FLAT, SIGNAL, (100, 101, 95, 96, 0), (96, 97, 90, 91, 0), FLAT]))
    assert trade.margin == 100.0 and trade.amount == pytest.approx(10.0)
    assert trade.liquidation_price == pytest.approx(LONG_LIQUIDATION)
    assert trade.exit_reason == LIQUIDATION
    assert trade.exit_time == pd.Timestamp("2024-01-01 00:15", tz="UTC")
    assert trade.exit_price == pytest.approx(LONG_LIQUIDATION)
    assert trade.profit == pytest.approx(-100.0 - ENTRY_FEE)  # the margin, and the entry fee
    assert trade.profit_ratio == pytest.approx(-1.01)


def test_a_gap_through_the_liquidation_price_still_loses_only_the_margin() -> None:
    trade = only(run(LONG, [FLAT, SIGNAL, (100, 101, 99, 100, 0), (80, 82, 70, 75, 0), FLAT]))
    assert trade.exit_reason == LIQUIDATION
    assert trade.exit_price == pytest.approx(LONG_LIQUIDATION)  # not the open at 80
    assert trade.profit == pytest.approx(-100.0 - ENTRY_FEE)


def test_a_short_is_liquidated_when_the_price_rises_that_far() -> None:
    trade = only(run(SHORT, [FLAT, SIGNAL, (100, 105, 99, 104, 0), (104, 110, 103, 109, 0)]))
    assert trade.liquidation_price == pytest.approx(SHORT_LIQUIDATION)
    assert (trade.exit_reason, trade.exit_price) == (LIQUIDATION, pytest.approx(SHORT_LIQUIDATION))
    assert trade.profit == pytest.approx(-100.0 - ENTRY_FEE)


def test_a_stop_before_the_liquidation_price_fires_first() -> None:
    stop = "stoploss:\n  initial: entry_price - 5\n"
    result = run(LONG + stop, [FLAT, SIGNAL, (100, 101, 99, 100, 0), (99, 99, 85, 86, 0)])
    trade = only(result)
    assert (trade.exit_reason, trade.exit_price) == ("stop_loss", pytest.approx(95.0))
    assert trade.profit == pytest.approx(-50.0 - ENTRY_FEE - 950 * FEE)
    assert result.assumptions.warnings == ()


def test_a_stop_beyond_the_liquidation_price_never_fires_and_the_report_says_so() -> None:
    stop = "stoploss:\n  initial: entry_price - 15\n"
    result = run(LONG + stop, [FLAT, SIGNAL, (100, 101, 99, 100, 0), (99, 99, 80, 86, 0)])
    trade = only(result)
    assert trade.exit_reason == LIQUIDATION and trade.initial_stop == 85.0
    (warning,) = result.assumptions.warnings
    assert "1 of 1 trade(s) had their stop at or beyond the liquidation price" in warning
    assert "stop 85, liquidation 90.4523" in warning


def test_partial_exits_leave_the_liquidation_price_and_lose_the_rest_of_the_margin() -> None:
    half = "take_profit:\n  half: {when: bars_held >= 1, close: 50%}\n"
    rows = [FLAT, SIGNAL, (100, 101, 99, 100, 0), (100, 101, 99, 100, 0), (97, 98, 85, 86, 0)]
    trade = only(run(LONG + half, rows))
    assert [f.reason for f in trade.fills] == ["entry", "half", LIQUIDATION]
    tp, liquidated = trade.fills[1:]
    assert (tp.price, tp.amount) == (97.0, pytest.approx(5.0))
    assert liquidated.price == pytest.approx(LONG_LIQUIDATION)
    # half the units, half the margin: 5 × (100 − liquidation) + what the exchange keeps = 50
    assert 5 * (100 - liquidated.price) + liquidated.fee == pytest.approx(50.0)
    assert trade.profit == pytest.approx(5 * (97 - 100) - 970 * FEE / 2 - 50.0 - ENTRY_FEE)


def test_an_exit_at_the_open_comes_first_unless_the_open_is_past_the_liquidation() -> None:
    quick = "exit:\n  long:\n    quick: bars_held >= 1\n"
    before = [FLAT, SIGNAL, (100, 101, 99, 100, 0), (100, 101, 99, 100, 0)]
    calm_open = only(run(LONG + quick, [*before, (95, 96, 80, 85, 0)]))
    assert (calm_open.exit_reason, calm_open.exit_price) == ("quick", 95.0)
    gap = only(run(LONG + quick, [*before, (85, 86, 80, 85, 0)]))
    assert (gap.exit_reason, gap.exit_price) == (LIQUIDATION, pytest.approx(LONG_LIQUIDATION))


def test_spot_trades_have_no_margin_and_are_never_liquidated() -> None:
    rows = [FLAT, SIGNAL, (100, 101, 95, 96, 0), (96, 97, 80, 81, 0), FLAT]
    trade = only(run(LONG, rows, market="spot"))
    assert trade.margin is None and trade.liquidation_price is None
    assert trade.exit_reason == "end_of_data"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-0.04, 0.04), min_size=3, max_size=30),
    st.sampled_from(["long", "short"]),
    st.floats(2.0, 25.0),
    st.floats(0.01, 0.15),
    st.booleans(),
)
# The walks above open a candle at most 2% from the last close: never past both a nearer
# stop and the liquidation (3.5% away at 25x), so the branch for that never ran. These
# candles open 6% away.
@example([0.0, -0.12, 0.0], "long", 25.0, 0.02, False)
@example([0.0, 0.12, 0.0], "short", 25.0, 0.02, False)
def test_no_trade_loses_more_than_its_margin_and_fees(
    steps: list[float], side: str, leverage: float, stop: float, take: bool
) -> None:
    """Random walks with gaps: whatever happens, a trade loses at most its margin (plus
    its fees); it is liquidated only at its liquidation price, and a stop nearer than
    that loses to the liquidation only when a candle opens past both."""
    rows, price = [FLAT, SIGNAL], 100.0
    for step in steps:
        new = price * (1 + step)
        gap = price * (1 + step / 2)  # every candle opens halfway to its close
        rows.append((gap, max(gap, new) * 1.003, min(gap, new) * 0.997, new, 0.0))
        price = new
    body = LONG if side == "long" else SHORT
    body += f"stoploss:\n  initial: entry_price * (1 - side * {stop})\n"
    body += "take_profit:\n  half: {when: profit > 1%, close: 50%}\n" if take else ""
    result = run(body, rows, leverage=leverage)
    trade = only(result)
    sign = 1.0 if side == "long" else -1.0
    assert trade.liquidation_price == pytest.approx(
        liquidation_price(trade.entry_price, leverage, 0.005, sign)
    )
    fees = sum(f.fee for f in trade.fills if f.reason != LIQUIDATION)
    assert trade.profit >= -trade.stake - fees - 1e-9
    if trade.exit_reason == LIQUIDATION:
        assert trade.fills[-1].price == trade.liquidation_price
        assert trade.fills[-1].fee >= 0
        if not beyond_liquidation(trade.initial_stop, trade.liquidation_price, sign):
            candle = rows[int((trade.exit_time - pd.Timestamp("2024-01-01", tz="UTC")) / FIVE)]
            opened_past = sign * (candle[0] - trade.liquidation_price) <= 0
            assert opened_past  # the stop would have come first otherwise


def test_real_candles_liquidate_where_the_low_first_reaches_the_price() -> None:
    """BTC on 5m candles at 50×: a 1.5% move against a trade liquidates it."""
    text = """
metadata: {name: reckless}
timeframe: 5m
market: {type: futures, pairs: [BTC/USDT]}
orders: {entry: market, exit: market}
entry:
  long:
    cross: crossed_above(ema(close, 9), ema(close, 21))
  short:
    cross: crossed_below(ema(close, 9), ema(close, 21))
exit:
  long:
    later: bars_held >= 288
  short:
    later: bars_held >= 288
sizing: {stake: 5%}
leverage: 50
backtest: {fee: 0.04%, slippage: 0.05%}
"""
    plan = build_plan(check(load_text(text, "t.yaml")))
    result = simulate(plan, fixture_candles, ["BTC/USDT"])
    candles = fixture_candles("BTC/USDT", "5m")
    liquidated = [t for t in result.trades if t.exit_reason == LIQUIDATION]
    assert len(liquidated) >= 3 and {t.side for t in liquidated} == {"long", "short"}
    for trade in result.trades:
        sign = 1.0 if trade.side == "long" else -1.0
        assert trade.liquidation_price == pytest.approx(
            liquidation_price(trade.entry_price, 50.0, 0.005, sign)
        )
        held = candles.loc[trade.entry_time : trade.exit_time]
        extreme = held["low"] if sign > 0 else held["high"]
        reached = (
            (extreme <= trade.liquidation_price)
            if sign > 0
            else (extreme >= trade.liquidation_price)
        )
        if trade.exit_reason == LIQUIDATION:
            assert reached.iloc[-1] and not reached.iloc[:-1].any()  # the first candle that did
            assert trade.fills[-1].price == trade.liquidation_price
            assert trade.profit == pytest.approx(-trade.stake - trade.fills[0].fee)
        else:
            assert not reached.iloc[:-1].any()  # it never came that far while open
    assert any("no stop" in w for w in result.assumptions.warnings)
    assert np.isfinite(result.equity.to_numpy()).all()
