"""The rolling-window source: what a bot holding candles as they close would see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.backtest.runner import BacktestRequest, prepare, simulate
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.source import ReplaySource
from kinetic_rules.live.window import WindowSource, window_sizes
from kinetic_rules.timeframes import timeframe_seconds
from tests.conftest import STRATEGIES
from tests.live.test_replay import BUSY, fingerprint


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


def closes(frame: pd.DataFrame, timeframe: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(frame.index) + pd.Timedelta(seconds=timeframe_seconds(timeframe))


def session(request: BacktestRequest, cut: pd.Timestamp) -> tuple[WindowSource, Iterator[int]]:
    """A window source holding what had closed by `cut`, and its steps, close by close,
    as candles of every timeframe close (each refreshed series extended, not recomputed)."""
    prepared = prepare(request)
    plan, pairs = prepared.plan, prepared.pairs
    needs = {(n.pair or pair, n.timeframe) for pair in pairs for n in plan.data}
    frames = {key: prepared.feed(*key) for key in needs}
    history = {key: f[closes(f, key[1]) <= cut] for key, f in frames.items()}
    source = WindowSource(plan, pairs, history, sizes={tf: 100_000 for tf in plan.warmup})
    step = pd.Timedelta(seconds=timeframe_seconds(plan.timeframe))
    end = max(closes(prepared.feed(p, plan.timeframe), plan.timeframe)[-1] for p in pairs)

    def steps() -> Iterator[int]:
        yield source.refresh()
        moment = cut
        while moment < end:
            moment += step
            for key, frame in frames.items():
                arriving = frame[closes(frame, key[1]) == moment]
                if len(arriving):
                    source.add(*key, arriving)
            yield source.refresh()

    return source, steps()


def test_a_window_source_stepped_close_by_close_sees_what_the_replay_sees(
    fixture_store: Path,
) -> None:
    request = BacktestRequest(STRATEGIES / "kinetic_empire.yaml", fixture_store)
    prepared = prepare(request)
    replay = ReplaySource(prepared.plan, prepared.feed, prepared.pairs)
    cut = replay.timeline[-400]
    window, steps = session(request, cut)
    for step in steps:
        live = window.as_of(step)
        seen = replay.as_of(int(replay.timeline.searchsorted(window.timeline[step])))
        for pair in prepared.pairs:
            mine, theirs = live[pair], seen[pair]
            known = len(mine.timeline_index)  # from there on: not warmed up yet
            assert min(mine.tradable_from, known) == min(theirs.tradable_from, known)
            for side in mine.entries:
                assert mine.entries[side][-1] == theirs.entries[side][-1]
            assert mine.allowed[-1] == theirs.allowed[-1]
            assert mine.limit[-1] == theirs.limit[-1]  # type: ignore[index]
            assert mine.blocked[-1] == theirs.blocked[-1]  # type: ignore[index]
    assert window._evaluator.restarts == 0  # every close extended the series, none recomputed
    for pair in prepared.pairs:  # and every value on the way there, of every kept series
        mine, theirs = live[pair], seen[pair]
        for node, values in mine.signals.values.items():
            np.testing.assert_array_equal(values, theirs.signals.values[node])
        np.testing.assert_array_equal(mine.allowed, theirs.allowed)


@pytest.mark.slow
def test_a_runtime_on_windows_trades_as_the_backtest_from_the_same_close(
    fixture_store: Path,
) -> None:
    request = BacktestRequest(BUSY, fixture_store)
    prepared = prepare(request)
    cut = prepared.feed("BTC/USDT", "5m").index[-1500]
    window, steps = session(request, cut)
    runtime = Runtime(prepared.plan, window)
    for step in steps:
        runtime.step(step)
    backtest = simulate(prepared.plan, prepared.feed, prepared.pairs, start=cut)
    closed = [fingerprint(t) for t in backtest.trades if t.exit_reason != "end_of_data"]
    mine = [fingerprint(t) for t in runtime.trades() if t.exit_time is not None]
    assert len(mine) >= 5
    assert mine == closed
    assert window._evaluator.restarts == 0
