"""Memory does not grow with pairs beyond what the portfolio needs: a backtest lets go of
each pair's candles once the pair is prepared, and keeps per pair only the series trade
paths read. (Peak figures are in benchmarks/bench_memory.py; tests measure no memory.)"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.backtest.runner import BacktestRequest, CandleFeed, prepare, run_backtest
from kinetic_rules.data.store import CandleStore
from kinetic_rules.engine.pairs import prepare_market, trade_nodes

KE = Path(__file__).parents[2] / "strategies" / "kinetic_empire.yaml"
PAIRS = ["BTC/USDT", "ETH/USDT", "EURI/USDT", "SOL/USDT"]  # BTC/USDT: every pair reads it


def test_a_backtest_lets_go_of_each_pairs_candles(
    fixture_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[tuple[str, str, weakref.ref[pd.DataFrame]]] = []
    original = CandleFeed._read

    def reading(self: CandleFeed, pair: str, timeframe: str) -> pd.DataFrame:
        frame = original(self, pair, timeframe)
        read.append((pair, timeframe, weakref.ref(frame)))
        return frame

    monkeypatch.setattr(CandleFeed, "_read", reading)
    result = run_backtest(BacktestRequest(KE, fixture_store, pairs=PAIRS))
    gc.collect()
    assert result.trades  # a real run, on real candles
    alive = {pair for pair, _, frame in read if frame() is not None}
    # the series every pair reads, and at most the pair worked on last: never all of them
    assert len(alive - {"BTC/USDT"}) <= 1, alive
    assert {pair for pair, timeframe, _ in read if timeframe == "5m"} == set(PAIRS)


def test_the_reports_candles_are_the_prices_the_run_held(
    fixture_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The charts draw the open, high, low and close the portfolio held for every pair
    anyway: no candle is read again after the run, and nothing more is kept."""
    result = run_backtest(BacktestRequest(KE, fixture_store, pairs=PAIRS))
    reads: list[str] = []
    monkeypatch.setattr(CandleFeed, "_read", lambda _feed, pair, _tf: reads.append(pair))
    stored = CandleStore(fixture_store).load("binance", "SOL/USDT", "5m")
    prices = ["open", "high", "low", "close"]
    pd.testing.assert_frame_equal(result.candles["SOL/USDT"], stored[prices])
    assert list(result.candles) == PAIRS
    assert not reads


def test_each_pair_keeps_only_the_series_trades_read(fixture_store: Path) -> None:
    prepared = prepare(BacktestRequest(KE, fixture_store, pairs=PAIRS))
    plan = prepared.plan
    market = prepare_market(plan, prepared.feed, prepared.pairs)
    checked = plan.strategy
    exit_rule = checked.exit["long"]["trend_break"].node  # trade-free: read whole, at once
    ema50 = checked.indicators["ema50"].node  # only inside that exit: never read alone
    for data in market.pairs:
        kept = set(data.signals.values)
        assert kept <= trade_nodes(plan)
        assert exit_rule in kept and ema50 not in kept
        assert data.limit is not None and data.limit.dtype == np.int32
    # each pair's candles are a run of the timeline: its index and positions are views
    # of the timeline's and of one shared range, not copies
    owners = {id(_owner(d.timeline_index)) for d in market.pairs}
    assert len(owners) == 1
    for data in market.pairs:
        assert np.shares_memory(data.signals.index.asi8, market.timeline.asi8)


def _owner(array: np.ndarray) -> np.ndarray:
    return array if array.base is None else _owner(array.base)
