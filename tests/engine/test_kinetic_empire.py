"""Kinetic Empire backtested on real candles; every trade checked against what the rules saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.backtest.metrics import compute_metrics
from kinetic_rules.backtest.report_files import results_json
from kinetic_rules.backtest.runner import BacktestRequest, prepare, run_backtest, simulate
from kinetic_rules.engine.model import BacktestResult
from kinetic_rules.functions import REGISTRY
from kinetic_rules.timeframes import timeframe_seconds
from tests.conftest import STRATEGIES
from tests.engine.runs import signal_frames

STRATEGY = STRATEGIES / "kinetic_empire.yaml"


@pytest.fixture(scope="module")
def request_(fixture_store: Path) -> BacktestRequest:
    return BacktestRequest(STRATEGY, fixture_store)


@pytest.fixture(scope="module")
def result(request_: BacktestRequest) -> BacktestResult:
    return run_backtest(request_)


@pytest.fixture(scope="module")
def frames(request_: BacktestRequest) -> dict[str, pd.DataFrame]:
    return signal_frames(request_)


def test_the_backtest_trades_and_reports_its_assumptions(result: BacktestResult) -> None:
    assert len(result.trades) >= 5
    assert result.pairs == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert any("spread" in s or "tight_spread" in s for s in result.assumptions.skipped)
    assert result.assumptions.fee == 0.001 and result.assumptions.slippage == 0.0005
    assert all(t.exit_reason is not None for t in result.trades)


def test_every_entry_had_all_five_conditions_and_no_protection(
    result: BacktestResult, frames: dict[str, pd.DataFrame]
) -> None:
    names = ["macro_trend", "micro_trend", "momentum", "pullback", "volume"]
    for trade in result.trades:
        row = frames[trade.pair].loc[trade.signal_time]
        assert all(row[f"entry.long.{n}"] for n in names), trade
        assert not row["protections.flash_crash.active"], trade
        assert row["entry.long"]


TIGHT = {"bull": 2, "bear": 1}


@pytest.fixture(scope="module")
def crowded(fixture_store: Path, tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    """Kinetic Empire with limits three pairs can reach (bull 2, bear 1), the regime read
    from BTC's hourly trend (its daily one stays bull all through the fixture's months),
    and the entry knobs opened so that signals compete for the slots."""
    text = STRATEGY.read_text()
    daily = "bull: close@1d[BTC/USDT] > ema(close, 50)@1d[BTC/USDT]"
    limits = "max_open_trades: {bull: 20, bear: 3}"
    assert daily in text and limits in text, "the variant no longer matches the strategy"
    text = text.replace(daily, daily.replace("@1d", "@1h")).replace(
        limits, f"max_open_trades: {{bull: {TIGHT['bull']}, bear: {TIGHT['bear']}}}"
    )
    variant = tmp_path_factory.mktemp("crowded") / "kinetic_empire.yaml"
    variant.write_text(text)
    overrides = {"roc_threshold": "0", "rsi_min": "0", "rsi_max": "100"}
    return run_backtest(BacktestRequest(variant, fixture_store, overrides=overrides))


def test_open_trades_reach_the_regime_limit_and_never_exceed_it(crowded: BacktestResult) -> None:
    never = pd.Timestamp.max.tz_localize("UTC")
    seen: set[tuple[str | None, int]] = set()
    for trade in crowded.trades:
        decided = trade.signal_time + pd.Timedelta("5min")
        open_then = sum(
            1 for t in crowded.trades if t.entry_time <= decided < (t.exit_time or never)
        )  # this trade included
        assert trade.regime in TIGHT
        assert open_then <= TIGHT[trade.regime], trade
        seen.add((trade.regime, open_then))
    assert {("bull", 2), ("bear", 1)} <= seen, "each regime's limit must be reached"


def test_initial_stop_is_entry_minus_two_atr(
    result: BacktestResult, request_: BacktestRequest
) -> None:
    feed = prepare(request_).feed
    atr = REGISTRY.get("atr")
    assert atr is not None
    for trade in result.trades:
        candles = feed(trade.pair, "5m")
        values = atr.impl(*(candles[k].to_numpy() for k in ("high", "low", "close")), 14)
        at_signal = values[candles.index.get_loc(trade.signal_time)]
        assert trade.initial_stop == pytest.approx(trade.entry_price - 2.0 * at_signal)


def test_trailing_exits_happened_only_after_two_and_a_half_percent(
    result: BacktestResult, request_: BacktestRequest
) -> None:
    feed = prepare(request_).feed
    trailing = [t for t in result.trades if t.exit_reason == "trailing_stop"]
    assert trailing, "no trailing exit on the fixtures: this test would check nothing"
    for trade in trailing:
        closes = feed(trade.pair, "5m")["close"]
        held = closes[(closes.index >= trade.entry_time) & (closes.index < trade.exit_time)]
        assert (held / trade.entry_price - 1).max() > 0.025
        assert trade.stop > trade.initial_stop


def test_trend_break_exits_follow_the_rule(
    result: BacktestResult, frames: dict[str, pd.DataFrame]
) -> None:
    broken = [t for t in result.trades if t.exit_reason == "trend_break"]
    assert broken, "no trend_break exit on the fixtures: this test would check nothing"
    for trade in broken:
        frame = frames[trade.pair]
        decided = frame.loc[: trade.exit_time - pd.Timedelta("1ns")]
        fired = decided["exit.long.trend_break"]
        assert fired[fired.index >= trade.entry_time].any()


def test_same_inputs_give_byte_identical_results(request_: BacktestRequest) -> None:
    first, second = run_backtest(request_), run_backtest(request_)
    first.elapsed_seconds = second.elapsed_seconds = 0.0
    assert results_json(first, compute_metrics(first)) == results_json(
        second, compute_metrics(second)
    )


@pytest.mark.parametrize("cut", ["2024-03-01 00:00", "2024-03-08 12:00"])
def test_a_backtest_cut_at_t_agrees_on_every_trade_closed_before_t(
    request_: BacktestRequest, result: BacktestResult, cut: str
) -> None:
    moment = pd.Timestamp(cut, tz="UTC")
    prepared = prepare(request_)

    def cut_feed(pair: str, timeframe: str) -> pd.DataFrame:
        frame = prepared.feed(pair, timeframe)
        length = pd.Timedelta(seconds=timeframe_seconds(timeframe))
        return frame[frame.index + length <= moment]

    partial = simulate(prepared.plan, cut_feed, prepared.pairs)
    closed = [t for t in result.trades if t.exit_time is not None and t.exit_time < moment]
    assert closed, "the cut must fall after some trades"
    key = [(t.pair, t.entry_time, t.entry_price, t.exit_time, t.exit_price) for t in closed]
    mine = [
        (t.pair, t.entry_time, t.entry_price, t.exit_time, t.exit_price)
        for t in partial.trades
        if t.exit_reason != "end_of_data"
    ]
    assert mine[: len(key)] == key


def test_equity_is_marked_to_market_and_ends_at_realised_profit(result: BacktestResult) -> None:
    final = result.equity.iloc[-1]
    assert final == pytest.approx(10_000 + sum(t.profit for t in result.trades))
    assert np.isfinite(result.equity.to_numpy()).all()


def test_every_signal_with_a_free_slot_became_an_entry(fixture_store: Path, tmp_path: Path) -> None:
    """The other half of seed property 6: all conditions held, the pair was on the list,
    nothing blocked it and a slot was free — then an entry was made (market orders, so
    that no unfilled limit can explain a missing trade)."""
    text = STRATEGY.read_text().replace("entry: limit", "entry: market")
    variant = tmp_path / "ke_market.yaml"
    variant.write_text(text)
    request = BacktestRequest(variant, fixture_store)
    result = run_backtest(request)
    prepared = prepare(request)
    from kinetic_rules.engine.pairs import prepare_market

    market = prepare_market(prepared.plan, prepared.feed, prepared.pairs)
    signals = {(t.pair, t.signal_time) for t in result.trades}
    step = pd.Timedelta("5min")
    checked = 0
    for data in market.pairs:
        index = data.signals.index
        usable = data.entries["long"] & data.allowed & ~data.blocked  # type: ignore[operator]
        usable[: data.tradable_from] = False
        for local in np.flatnonzero(usable):
            at, decided = index[local], index[local] + step
            holding = [  # decided earlier, still open at this close
                t for t in result.trades
                if t.signal_time < at and (t.exit_time is None or t.exit_time > decided)
            ]  # fmt: skip
            rivals = [t for t in result.trades if t.signal_time == at and t.pair != data.pair]
            if any(t.pair == data.pair for t in holding):
                continue  # one trade per pair
            if len(holding) + len(rivals) >= data.limit[local]:  # type: ignore[index]
                continue  # the slots went to others at this close
            checked += 1
            assert (data.pair, at) in signals, (data.pair, at)
    assert checked >= 5


def test_flash_crash_protection_comes_on_with_a_crash_and_off_once_btc_is_stable(
    frames: dict[str, pd.DataFrame],
) -> None:
    frame = frames["SOL/USDT"]
    active = frame["protections.flash_crash.active"]
    crash = frame["conditions.btc_crash"]
    stable = frame["conditions.btc_stable"]
    assert crash.any(), "the fixture holds a real BTC drop of more than 5% within an hour"
    turned_on = active & ~active.shift(1, fill_value=False)
    turned_off = ~active & active.shift(1, fill_value=False)
    assert turned_on.any() and turned_off.any()
    assert crash[turned_on].all()  # it comes on exactly when a crash is seen
    assert stable[turned_off].all()  # and goes off only once BTC held its trend for 4 hours
    assert not (active & stable & ~crash & active.shift(1, fill_value=False)).any()
