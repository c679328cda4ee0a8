"""The rolling-window source: what a bot holding candles as they close would see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kinetic_rules.backtest.runner import BacktestRequest, prepare
from kinetic_rules.live.source import ReplaySource
from kinetic_rules.live.window import WindowSource, window_sizes
from kinetic_rules.timeframes import timeframe_seconds
from tests.live.test_replay import BUSY


def test_windows_are_long_multiples_of_the_warm_up(fixture_store: Path) -> None:
    plan = prepare(BacktestRequest(BUSY, fixture_store)).plan
    sizes = window_sizes(plan, least=100)
    assert all(sizes[tf] >= 10 * n and sizes[tf] >= 100 for tf, n in plan.warmup.items())


def test_candles_are_appended_once_and_trimmed_to_the_window(fixture_store: Path) -> None:
    prepared = prepare(BacktestRequest(BUSY, fixture_store))
    candles = prepared.feed("SOL/USDT", "5m")
    source = WindowSource(prepared.plan, ["SOL/USDT"], {}, sizes={"5m": 50})
    source.add("SOL/USDT", "5m", candles.iloc[:40])
    source.add("SOL/USDT", "5m", candles.iloc[30:60])  # overlaps: no duplicates
    kept = source._feed("SOL/USDT", "5m")
    assert kept.index.is_unique and len(kept) == 50
    assert kept.index[-1] == candles.index[59]


def test_a_window_holding_all_history_sees_what_the_replay_sees(fixture_store: Path) -> None:
    prepared = prepare(BacktestRequest(BUSY, fixture_store))
    plan, pairs = prepared.plan, prepared.pairs
    cut = pd.Timestamp("2024-03-01 12:00", tz="UTC")
    needs = {(n.pair or pair, n.timeframe) for pair in pairs for n in plan.data}
    history = {}
    for pair, timeframe in needs:
        frame = prepared.feed(pair, timeframe)
        closes = frame.index + pd.Timedelta(seconds=timeframe_seconds(timeframe))
        history[(pair, timeframe)] = frame[closes <= cut]  # what had closed by then
    window = WindowSource(plan, pairs, history, sizes={tf: 100_000 for tf in plan.warmup})
    step = window.refresh()
    live = window.as_of(step)
    replay = ReplaySource(plan, prepared.feed, pairs)
    at = int(replay.timeline.searchsorted(window.timeline[step]))
    seen = replay.as_of(at)
    for pair in pairs:
        mine, theirs = live[pair], seen[pair]
        for side in mine.entries:
            np.testing.assert_array_equal(mine.entries[side][-200:], theirs.entries[side][-200:])
        np.testing.assert_array_equal(mine.limit[-200:], theirs.limit[-200:])  # type: ignore[index]
        np.testing.assert_array_equal(mine.allowed[-200:], theirs.allowed[-200:])
