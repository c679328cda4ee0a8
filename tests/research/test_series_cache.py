"""The per-study series cache: trials that reuse series give exactly the plain backtest's
result, compute only what their values change, and cannot corrupt each other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kinetic_rules.compile.evaluate as evaluate
from kinetic_rules.backtest.runner import BacktestResult, run_backtest, simulate
from kinetic_rules.compile.series_cache import SeriesCache
from kinetic_rules.engine import pairs
from kinetic_rules.lang import ast
from kinetic_rules.research.space import overrides
from kinetic_rules.research.trials import TrialRunner, build_context
from tests.research.conftest import KE, request_for

Values = dict[str, Any]


def _plain(store: Path, values: Values, strategy: Path = KE, **changes: Any) -> BacktestResult:
    """What `kinetic-rules backtest --set name=value …` gives, without any cache."""
    request = request_for(store, strategy=strategy, overrides=overrides(values), **changes)
    return run_backtest(request)


def _same(trial: BacktestResult, plain: BacktestResult) -> None:
    assert trial.trades == plain.trades
    pd.testing.assert_series_equal(trial.equity, plain.equity)


@pytest.fixture(scope="module")
def runner(fixture_store: Path) -> TrialRunner:
    return TrialRunner(build_context(request_for(fixture_store)))


@settings(max_examples=8, deadline=None)
@given(
    roc=st.floats(0, 3, allow_nan=False).map(lambda x: round(x, 3)),
    low=st.integers(20, 55),
    high=st.integers(56, 90),
)
def test_a_trial_with_the_cache_trades_exactly_as_a_plain_backtest(
    runner: TrialRunner, fixture_store: Path, roc: float, low: int, high: int
) -> None:
    values = {"roc_threshold": roc, "rsi_min": low, "rsi_max": high}
    _same(runner.backtest(values), _plain(fixture_store, values))


@pytest.fixture
def counted_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The name of every function the batch evaluator runs (indicators, windows …)."""
    names: list[str] = []
    original = evaluate.run

    def counting(function: Any, inputs: Any, arguments: Any) -> Any:
        names.append(function.name)
        return original(function, inputs, arguments)

    monkeypatch.setattr(evaluate, "run", counting)
    yield names


def test_later_trials_compute_no_indicator_again(
    fixture_store: Path, counted_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    layouts: list[int] = []
    lay_out = pairs._lay_out

    def counting(plan: Any, indexes: Any) -> Any:
        layouts.append(len(indexes))
        return lay_out(plan, indexes)

    monkeypatch.setattr(pairs, "_lay_out", counting)
    runner = TrialRunner(build_context(request_for(fixture_store)))
    assert runner.backtest({"roc_threshold": 1.0, "rsi_min": 40, "rsi_max": 70}).trades
    first = len(counted_calls)
    assert first > 0 and runner.cache is not None
    computed = runner.cache.misses
    assert runner.backtest({"roc_threshold": 2.0, "rsi_min": 35, "rsi_max": 75}).trades
    # the entry thresholds change only comparisons: every indicator comes from the cache
    assert len(counted_calls) == first
    assert runner.cache.hits > 0
    changed = runner.cache.misses - computed
    runner.backtest({"roc_threshold": 2.0, "rsi_min": 35, "rsi_max": 75})
    assert runner.cache.misses - computed == changed  # the same values: nothing at all
    assert 0 < changed < computed
    assert layouts == [len(runner.context.pairs)]  # the pairs laid on the timeline once


def test_the_cache_can_be_switched_off_and_then_computes_everything(
    fixture_store: Path, counted_calls: list[str]
) -> None:
    context = build_context(request_for(fixture_store), cache_mb=0)
    runner = TrialRunner(context)
    assert runner.cache is None
    values = {"roc_threshold": 1.0, "rsi_min": 40, "rsi_max": 70}
    runner.backtest(values)
    first = len(counted_calls)
    again = runner.backtest(values)
    assert len(counted_calls) == 2 * first  # the second trial ran every function again
    _same(again, _plain(fixture_store, values))


def test_cached_series_are_read_only(fixture_store: Path) -> None:
    runner = TrialRunner(build_context(request_for(fixture_store)))
    values = {"roc_threshold": 1.0, "rsi_min": 40, "rsi_max": 70}
    runner.backtest(values)
    assert runner.cache is not None and len(runner.cache) > 0
    kept = list(runner.cache._entries.values())
    assert all(not array.flags.writeable for array in kept)
    with pytest.raises(ValueError, match="read-only"):
        kept[0][0] = kept[0][0]
    _same(runner.backtest(values), _plain(fixture_store, values))


def test_a_regime_whose_rule_reads_a_param_is_never_taken_from_another_trial(
    fixture_store: Path, tmp_path: Path
) -> None:
    text = KE.read_text()
    text = text.replace(
        "  crash_drop:",
        '  trend_days: {value: 50, min: 2, max: 60, doc: "Days of the regime\'s trend line."}\n'
        "  crash_drop:",
    )
    text = text.replace(
        "bull: close@1d[BTC/USDT] > ema(close, 50)@1d[BTC/USDT]",
        "bull: close@1d[BTC/USDT] > ema(close, $trend_days)@1d[BTC/USDT]",
    )
    text = text.replace(
        "    volume: volume > vol_mean_24h ",
        '    bullish: regime == "bull"\n    volume: volume > vol_mean_24h ',
    )
    strategy = tmp_path / "regime_param.yaml"
    strategy.write_text(text)
    runner = TrialRunner(build_context(request_for(fixture_store, strategy=strategy)))
    results = []
    for days in (2, 40, 2):
        values = {"trend_days": days}
        trial = runner.backtest(values)
        _same(trial, _plain(fixture_store, values, strategy))
        results.append(trial.trades)
    assert results[0] != results[1]  # the param matters, so a stale series would show


def test_a_cache_never_serves_series_of_other_candles(fixture_store: Path) -> None:
    """One cache over two spans (as if a walk-forward reused it): each run still equals
    its own plain backtest, because the candles are part of every key."""
    cache = SeriesCache()
    values = {"roc_threshold": 1.0, "rsi_min": 40, "rsi_max": 70}
    for end in ("2024-03-01", "2024-03-14"):
        runner = TrialRunner(
            build_context(request_for(fixture_store, end=pd.Timestamp(end, tz="UTC")))
        )
        context = runner.context
        result = simulate(
            runner.plan_for(values),
            context.feed,
            context.pairs,
            context.start,
            None,
            context.extras(),
            must_trade=True,
            cache=cache,
        )
        _same(result, _plain(fixture_store, values, end=pd.Timestamp(end, tz="UTC")))


FRAME = ("BTC/USDT", "5m", 10, 0, 9, "keep", "time")


def _nodes(count: int) -> list[ast.Node]:
    return [ast.Name(id=f"n{i}") for i in range(count)]


def test_the_cache_keeps_at_most_its_bound_least_recently_used_first() -> None:
    nodes = _nodes(4)
    cache = SeriesCache(max_bytes=3 * 800)
    cache.new_run()
    for node in nodes[:3]:
        cache.put(FRAME, node, np.zeros(100))
    cache.new_run()
    assert cache.get(FRAME, nodes[0]) is not None  # now the most recently used
    cache.put(FRAME, nodes[3], np.zeros(100))
    assert cache.get(FRAME, nodes[1]) is None  # the least recently used went
    assert all(cache.get(FRAME, n) is not None for n in (nodes[0], nodes[2], nodes[3]))
    assert cache.bytes == 3 * 800 and len(cache) == 3
    cache.put(FRAME, nodes[1], np.zeros(500))  # larger than the whole bound: not kept
    assert cache.get(FRAME, nodes[1]) is None and cache.bytes == 3 * 800
    cache.put(FRAME, nodes[0], 1.5)  # a constant: not kept, nothing changes
    assert len(cache) == 3
    other = ("BTC/USDT", "5m", 11, 0, 10, "keep", "time")  # other candles, other key
    assert cache.get(other, nodes[0]) is None


def test_a_run_needing_more_than_the_bound_leaves_the_next_runs_a_part_to_find() -> None:
    """Every trial reads the same series in the same order: plain LRU would replace them
    one by one and never hit. The cache keeps what it holds instead."""
    nodes = _nodes(10)
    cache = SeriesCache(max_bytes=4 * 800)
    for _ in range(3):
        cache.new_run()
        for node in nodes:
            if cache.get(FRAME, node) is None:
                cache.put(FRAME, node, np.zeros(100))
    assert cache.hits == 2 * 4 and len(cache) == 4


@given(
    steps=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 50), st.booleans()), max_size=60),
    bound=st.integers(0, 400),
)
def test_the_cache_never_holds_more_than_its_bound(
    steps: list[tuple[int, int, bool]], bound: int
) -> None:
    cache = SeriesCache(max_bytes=bound)
    nodes = _nodes(7)
    for which, size, new_run in steps:
        if new_run:
            cache.new_run()
        found = cache.get(FRAME, nodes[which])
        assert found is None or not found.flags.writeable
        if found is None:
            cache.put(FRAME, nodes[which], np.zeros(size))
        assert cache.bytes <= bound
        assert cache.bytes == sum(a.nbytes for a in cache._entries.values())
