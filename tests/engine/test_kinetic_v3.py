"""Kinetic Empire v3 (seed 001) on real 15m candles: the seed's own properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.backtest.report_files import trade_records, trades_csv
from kinetic_rules.backtest.runner import BacktestRequest, run_backtest
from kinetic_rules.engine.model import BacktestResult, Trade
from kinetic_rules.margin import beyond_liquidation, liquidation_price
from tests.conftest import STRATEGIES
from tests.engine.runs import (
    assert_no_look_ahead,
    marked_open_profit,
    settled_equity,
    signal_frames,
)

V3 = STRATEGIES / "kinetic_v3.yaml"
PAIRS = ["BTC/USDT", "ETH/USDT"]
COMPONENTS = ["trend_4h", "trend_1h", "rsi", "macd", "action"]


@pytest.fixture(scope="module")
def request_(fixture_store: Path) -> BacktestRequest:
    return BacktestRequest(V3, fixture_store, pairs=PAIRS)


@pytest.fixture(scope="module")
def result(request_: BacktestRequest) -> BacktestResult:
    return run_backtest(request_)


@pytest.fixture(scope="module")
def frames(request_: BacktestRequest) -> dict[str, pd.DataFrame]:
    return signal_frames(request_)


def test_it_trades_both_sides_with_leverage(result: BacktestResult) -> None:
    sides = {t.side for t in result.trades}
    assert sides == {"long", "short"} and len(result.trades) >= 20
    assert {t.leverage for t in result.trades} <= {2.0, 5.0, 7.0, 10.0, 15.0, 20.0}


def test_scores_are_the_sum_of_their_components_within_0_to_100(
    frames: dict[str, pd.DataFrame],
) -> None:  # property 5
    for frame in frames.values():
        for side in ("long", "short"):
            parts = [frame[f"indicators.{side}_{c}"] for c in COMPONENTS]
            total = sum(parts) + frame["indicators.volume_spike"]
            np.testing.assert_array_equal(frame[f"indicators.{side}_score"], total)
            assert frame[f"indicators.{side}_score"].between(0, 100).all()
        assert not (
            (frame["indicators.long_score"] >= 60) & (frame["indicators.short_score"] >= 60)
        ).any()


def test_leverage_follows_the_table_exactly(
    result: BacktestResult, frames: dict[str, pd.DataFrame]
) -> None:  # property 7
    calm = {60: 5, 70: 10, 80: 15, 90: 20}
    hot = {60: 2, 70: 5, 80: 7, 90: 10}
    for trade in result.trades:
        row = frames[trade.pair].loc[trade.signal_time]
        score = row["indicators.score"]
        table = hot if row["conditions.hot"] else calm
        expected = table[max(k for k in table if k <= score)]
        assert trade.leverage == expected


def test_stop_is_never_more_than_three_percent_away(result: BacktestResult) -> None:  # property 6
    for trade in result.trades:
        assert abs(trade.entry_price - trade.initial_stop) / trade.entry_price <= 0.03 + 1e-12


def test_a_position_is_never_more_than_a_quarter_of_equity(result: BacktestResult) -> None:  # 8
    step = pd.Timedelta("15min")
    for trade in result.trades:
        decided = trade.signal_time + step
        known = sum(
            t.profit for t in result.trades
            if t.exit_time is not None and t.fills[-1].time + step <= decided
        )  # fmt: skip
        assert trade.stake * trade.leverage <= 0.25 * (10_000 + known) + 1e-6


def test_take_profits_come_in_order_and_close_their_shares(result: BacktestResult) -> None:  # 9
    seen = {"tp1": 0, "tp2": 0}
    for trade in result.trades:
        reasons = [f.reason for f in trade.fills]
        if "tp2" in reasons:
            assert "tp1" in reasons and reasons.index("tp1") < reasons.index("tp2")
        for fill in trade.fills:
            share = {"tp1": 0.4, "tp2": 0.3}.get(fill.reason)
            if share is not None:
                assert fill.amount == pytest.approx(share * trade.amount)
                seen[fill.reason] += 1
    assert seen["tp1"] and seen["tp2"], f"both take-profits must happen to be checked: {seen}"


def test_short_profits_when_the_price_falls(result: BacktestResult) -> None:
    shorts = [t for t in result.trades if t.side == "short" and t.exit_price]
    assert shorts
    for trade in shorts:
        fell = trade.exit_price < trade.entry_price
        gross = sum((trade.entry_price - f.price) * f.amount for f in trade.fills[1:])
        assert (gross > 0) == fell or abs(trade.exit_price - trade.entry_price) < 1e-9


def test_every_trade_has_isolated_margin_and_a_liquidation_price_its_stop_comes_before(
    result: BacktestResult,
) -> None:
    for trade in result.trades:
        sign = 1.0 if trade.side == "long" else -1.0
        assert trade.margin == trade.stake
        assert trade.stake * trade.leverage == pytest.approx(trade.amount * trade.entry_price)
        assert trade.liquidation_price == pytest.approx(
            liquidation_price(trade.entry_price, trade.leverage, 0.005, sign)
        )
        # A stop at most 3% away lies before a liquidation at least 4.48% away (20×).
        assert not beyond_liquidation(trade.initial_stop, trade.liquidation_price, sign)
    # no stop beyond its liquidation; the one warning says the fixtures are spot candles
    [warning] = result.assumptions.warnings
    assert warning.startswith("this futures strategy ran on spot candles of BTC/USDT")
    assert any("isolated margin" in s for s in result.assumptions.fill_model)


def test_reports_carry_margin_and_liquidation_price(result: BacktestResult) -> None:
    first = trade_records(result)[0]
    assert first["margin"] == pytest.approx(result.trades[0].stake)
    assert first["liquidation_price"] == pytest.approx(result.trades[0].liquidation_price)
    header = trades_csv(result).splitlines()[0].split(",")
    assert {"margin", "liquidation_price", "tags"} <= set(header)


# Property 11. With its 1–2% risk per trade and two pairs, the file's 5% is never reached in
# the fixture month (its open loss stays far from it); a tighter limit shows the rule. With
# the scanner's filters few trades are open together, so the limit is tight: 0.1%.
TIGHT = "0.1%"


@pytest.fixture(scope="module")
def emergency(fixture_store: Path) -> BacktestResult:
    overrides = {"max_open_loss": TIGHT}
    return run_backtest(BacktestRequest(V3, fixture_store, pairs=PAIRS, overrides=overrides))


def test_the_default_limit_is_never_reached_here(result: BacktestResult) -> None:
    closes = result.equity.index
    worst = min(marked_open_profit(result, c) / settled_equity(result, c) for c in closes)
    assert -0.05 < worst < 0
    assert not any(t.exit_reason == "protection:emergency" for t in result.trades)


def test_an_open_loss_over_the_limit_closes_every_open_trade(emergency: BacktestResult) -> None:
    limit, step = 0.001, pd.Timedelta("15min")
    fired = 0
    for close in emergency.equity.index:
        ratio = marked_open_profit(emergency, close) / settled_equity(emergency, close)
        if ratio >= -limit - 1e-9:
            continue
        fired += 1
        for trade in emergency.trades:
            in_market = trade.entry_time + step <= close < trade.fills[-1].time + step
            if in_market and trade.exit_reason != "end_of_data":
                assert trade.fills[-1].time == close  # gone at the open after that close
    assert fired >= 10


def test_every_emergency_exit_followed_a_close_over_the_limit(emergency: BacktestResult) -> None:
    exits = [t for t in emergency.trades if t.exit_reason == "protection:emergency"]
    assert len(exits) >= 10
    for trade in exits:
        decided = trade.fills[-1].time  # the exit filled at the open right after the close
        ratio = marked_open_profit(emergency, decided) / settled_equity(emergency, decided)
        assert ratio < -0.001 + 1e-9


def test_the_emergency_exit_never_reads_a_later_candle(fixture_store: Path) -> None:
    request = BacktestRequest(V3, fixture_store, pairs=PAIRS, overrides={"max_open_loss": TIGHT})
    moments = ["2024-02-29 13:15", "2024-03-06 02:45", "2024-03-11 18:00"]
    assert_no_look_ahead(request, [pd.Timestamp(m, tz="UTC") for m in moments])


def test_no_entry_is_decided_while_the_open_loss_is_past_the_limit(
    emergency: BacktestResult,
) -> None:  # one of property 10's checks
    step = pd.Timedelta("15min")
    for trade in emergency.trades:
        decided = trade.signal_time + step
        ratio = marked_open_profit(emergency, decided) / settled_equity(emergency, decided)
        assert ratio >= -0.001 - 1e-9


def test_checking_closes_ahead_for_the_emergency_exit_changes_no_trade(
    fixture_store: Path, emergency: BacktestResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The backtest checks the closes between two decisions for a close-all many at a time
    # (engine/portfolio.py, SWEEP_AHEAD); only up to the next decision is the plain way.
    monkeypatch.setattr("kinetic_rules.engine.portfolio.SWEEP_AHEAD", 1)
    overrides = {"max_open_loss": TIGHT}
    plain = run_backtest(BacktestRequest(V3, fixture_store, pairs=PAIRS, overrides=overrides))
    assert sum(t.exit_reason == "protection:emergency" for t in plain.trades) >= 10
    assert [_trade_key(t) for t in plain.trades] == [_trade_key(t) for t in emergency.trades]


def _trade_key(trade: Trade) -> tuple[object, ...]:
    fills = tuple((f.time, f.price, f.amount, f.reason) for f in trade.fills)
    return (trade.pair, trade.side, trade.entry_time, trade.stake, trade.exit_reason, fills)
