"""Metrics against hand arithmetic on small, fully known results."""

from __future__ import annotations

import json
import math
import statistics
from datetime import timedelta
from itertools import pairwise

import pandas as pd
import pytest

from kinetic_rules.backtest.metrics import (
    NO_REGIME,
    by_exit_reason,
    by_pair,
    by_regime,
    compute_metrics,
    daily_returns,
    monthly_returns,
)
from kinetic_rules.engine.model import BacktestResult
from tests.backtest.conftest import HAND_EQUITY, make_result, make_trade, ts

DAY = timedelta(days=1)


def hand_returns() -> list[float]:
    values = [1000.0, *HAND_EQUITY]
    return [b / a - 1 for a, b in pairwise(values)]


def test_hand_built_totals(hand_result: BacktestResult) -> None:
    m = compute_metrics(hand_result)
    assert m.starting_balance == 1000.0
    assert m.final_balance == 1100.0
    assert m.total_return == pytest.approx(0.10)
    assert m.profit_total == pytest.approx(30 - 60 + 130)
    assert m.fees == pytest.approx(2.0)
    assert (m.trades, m.wins, m.draws, m.losses, m.open_trades) == (3, 2, 0, 1, 0)
    assert m.win_rate == pytest.approx(2 / 3)
    assert m.gross_profit == pytest.approx(160.0)
    assert m.gross_loss == pytest.approx(60.0)
    assert m.profit_factor == pytest.approx(160 / 60)
    assert not m.profit_factor_infinite
    assert m.expectancy == pytest.approx(100 / 3)
    # profit ratios: 30/200, −60/200, 130/400
    assert m.expectancy_ratio == pytest.approx((0.15 - 0.30 + 0.325) / 3)
    assert m.best_trade == pytest.approx(0.325)
    assert m.worst_trade == pytest.approx(-0.30)
    assert m.avg_holding == 3 * DAY  # 2, 2 and 5 days


def test_hand_built_risk_figures(hand_result: BacktestResult) -> None:
    m = compute_metrics(hand_result)
    returns = hand_returns()
    assert list(daily_returns(hand_result)) == pytest.approx(returns)
    assert m.days == 10
    mean = statistics.fmean(returns)
    assert m.sharpe == pytest.approx(mean / statistics.stdev(returns) * math.sqrt(365))
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    assert m.sortino == pytest.approx(mean / downside * math.sqrt(365))
    assert m.span == 10 * DAY
    assert m.cagr == pytest.approx(1.1 ** (365 / 10) - 1)
    # peak 1030 (close of Jan 2, stamped Jan 3 00:00) to 970 two days later
    assert m.max_drawdown == pytest.approx(970 / 1030 - 1)
    assert m.max_drawdown_abs == pytest.approx(60.0)
    assert m.max_drawdown_peak == ts("2024-01-03")
    assert m.max_drawdown_trough == ts("2024-01-05")
    assert m.calmar == pytest.approx((1.1 ** (365 / 10) - 1) / (1 - 970 / 1030))
    # 1030 is regained by 1040 at Jan 7 00:00: 4 days; the 1050 → 1060 dip lasts 2
    assert m.max_drawdown_duration == 4 * DAY
    # open Jan 1–5 and Jan 6–11 of the ten days
    assert m.exposure == pytest.approx(0.9)
    assert list(monthly_returns(hand_result)) == pytest.approx([0.10])


def test_breakdowns(hand_result: BacktestResult) -> None:
    pairs = by_pair(hand_result)
    assert [r.key for r in pairs] == ["BTC/USDT", "ETH/USDT"]
    btc = pairs[0]
    assert (btc.trades, btc.wins, btc.losses, btc.win_rate) == (2, 2, 0, 1.0)
    assert btc.profit == pytest.approx(160.0)
    assert btc.avg_profit_ratio == pytest.approx((0.15 + 0.325) / 2)
    assert btc.total_profit_ratio == pytest.approx(0.16)
    assert btc.avg_holding == 3.5 * DAY
    reasons = {r.key: r for r in by_exit_reason(hand_result)}
    assert set(reasons) == {"trend_break", "stop_loss"}
    assert reasons["stop_loss"].profit == pytest.approx(-60.0)
    assert reasons["stop_loss"].win_rate == 0.0
    regimes = {r.key: r.trades for r in by_regime(hand_result)}
    assert regimes == {"bull": 2, "bear": 1}


def test_untraded_pairs_and_regimes_are_listed_and_unknown_regime_gets_a_key() -> None:
    trade = make_trade(1, "ETH/USDT", ts("2024-01-01"), ts("2024-01-02"), 10, 11, 1, regime=None)
    equity = pd.Series([1001.0], index=pd.DatetimeIndex([ts("2024-01-02")]))
    result = make_result(
        [trade], equity, start=ts("2024-01-01"), end=ts("2024-01-01"), pairs=["ETH/USDT", "X/USDT"]
    )
    assert {r.key: r.trades for r in by_pair(result)} == {"ETH/USDT": 1, "X/USDT": 0}
    assert {r.key: r.trades for r in by_regime(result)} == {NO_REGIME: 1, "bull": 0, "bear": 0}
    idle = next(r for r in by_pair(result) if r.key == "X/USDT")
    assert idle.win_rate is None and idle.avg_profit_ratio is None and idle.avg_holding is None


def test_nothing_happened(empty_result: BacktestResult) -> None:
    m = compute_metrics(empty_result)
    assert m.trades == 0 and m.win_rate is None and m.profit_factor is None
    assert not m.profit_factor_infinite
    assert m.expectancy is None and m.avg_holding is None and m.best_trade is None
    assert m.sharpe is None and m.sortino is None and m.calmar is None
    assert m.max_drawdown == 0.0 and m.max_drawdown_duration is None
    assert m.exposure == 0.0 and m.total_return == 0.0
    json.dumps(m.to_dict(), allow_nan=False)
    assert by_exit_reason(empty_result) == []


def test_no_equity_at_all() -> None:
    empty = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype="float64")
    result = make_result([], empty, start=ts("2024-01-01"), end=ts("2024-01-01"))
    m = compute_metrics(result)
    assert m.final_balance == 1000.0 and m.days == 0 and m.cagr is None
    assert len(monthly_returns(result)) == 0
    json.dumps(m.to_dict(), allow_nan=False)


def test_winners_only_make_an_infinite_profit_factor() -> None:
    trade = make_trade(1, "BTC/USDT", ts("2024-01-01"), ts("2024-01-02"), 100, 110, 1)
    equity = pd.Series([1010.0], index=pd.DatetimeIndex([ts("2024-01-02")]))
    m = compute_metrics(make_result([trade], equity, start=ts("2024-01-01"), end=ts("2024-01-01")))
    assert m.profit_factor is None and m.profit_factor_infinite
    assert m.to_dict()["profit_factor"] is None and m.to_dict()["profit_factor_infinite"]


def test_a_loss_on_the_first_candle_is_a_drawdown() -> None:
    equity = pd.Series(
        [990.0, 1000.0], index=pd.DatetimeIndex([ts("2024-01-02"), ts("2024-01-03")])
    )
    m = compute_metrics(make_result([], equity, start=ts("2024-01-01"), end=ts("2024-01-02")))
    assert m.max_drawdown == pytest.approx(-0.01)
    assert m.max_drawdown_peak == ts("2024-01-01")
    assert m.max_drawdown_duration == 2 * DAY


def test_an_unrecovered_drawdown_lasts_until_the_end() -> None:
    index = pd.date_range("2024-01-01 01:00", periods=4, freq="h", tz="UTC")
    equity = pd.Series([1100.0, 900.0, 950.0, 1000.0], index=index)
    m = compute_metrics(make_result([], equity, start=ts("2024-01-01"), end=index[-1]))
    assert m.max_drawdown == pytest.approx(900 / 1100 - 1)
    assert m.max_drawdown_abs == pytest.approx(200.0)
    assert m.max_drawdown_duration == timedelta(hours=3)  # 01:00 peak → 04:00 end
    # one calendar day: no spread of returns, so no Sharpe
    assert m.days == 1 and m.sharpe is None


def test_exposure_counts_overlapping_trades_once_and_open_trades_to_the_end() -> None:
    day = ts("2024-01-01")
    trades = [
        make_trade(1, "BTC/USDT", day, day + pd.Timedelta("4h"), 1, 1, 1),
        make_trade(2, "ETH/USDT", day + pd.Timedelta("2h"), day + pd.Timedelta("6h"), 1, 1, 1),
        make_trade(3, "BTC/USDT", day + pd.Timedelta("20h"), None, 1, None, 1),
    ]
    index = pd.date_range("2024-01-01 01:00", periods=24, freq="h", tz="UTC")
    equity = pd.Series(1000.0, index=index)
    m = compute_metrics(make_result(trades, equity, start=day, end=index[-1]))
    assert m.exposure == pytest.approx((6 + 4) / 24)
    assert m.trades == 2 and m.open_trades == 1 and m.draws == 2


def test_months_and_days_end_at_midnight_utc() -> None:
    """A candle closing at 00:00 belongs to the day (and month) that just ended."""
    index = pd.DatetimeIndex([ts("2024-01-31 12:00"), ts("2024-02-01"), ts("2024-02-01 12:00")])
    equity = pd.Series([1050.0, 1100.0, 1210.0], index=index)
    result = make_result([], equity, start=ts("2024-01-31"), end=ts("2024-02-01 11:00"))
    months = monthly_returns(result)
    assert [m.strftime("%Y-%m") for m in months.index] == ["2024-01", "2024-02"]
    assert list(months) == pytest.approx([0.10, 0.10])
    assert list(daily_returns(result)) == pytest.approx([0.10, 0.10])


def test_naive_times_are_taken_as_utc() -> None:
    index = pd.date_range("2024-01-02", periods=3, freq="D")
    equity = pd.Series([1010.0, 1000.0, 1020.0], index=index)
    result = make_result([], equity, start=pd.Timestamp("2024-01-01"), end=index[-1])
    m = compute_metrics(result)
    assert m.days == 3 and m.max_drawdown == pytest.approx(1000 / 1010 - 1)


def test_partial_exits_count_toward_profit_and_the_final_reason() -> None:
    trade = make_trade(
        1,
        "BTC/USDT",
        ts("2024-01-01"),
        ts("2024-01-03"),
        100.0,
        90.0,
        2.0,
        reason="stop_loss",
        partial=("2024-01-02", 120.0, 1.0),
    )
    equity = pd.Series([1010.0], index=pd.DatetimeIndex([ts("2024-01-03")]))
    result = make_result([trade], equity, start=ts("2024-01-01"), end=ts("2024-01-02"))
    m = compute_metrics(result)
    assert m.profit_total == pytest.approx(20 - 10)
    assert [r.key for r in by_exit_reason(result)] == ["stop_loss"]


def test_cagr_of_an_account_worth_almost_nothing_is_a_total_loss() -> None:
    from datetime import timedelta

    from kinetic_rules.backtest.metrics import _cagr

    assert _cagr(1000.0, 5e-324, timedelta(hours=1)) == -1.0
    assert _cagr(1000.0, 0.0, timedelta(days=1)) == -1.0
