"""The incremental evaluator: series extended close by close equal one batch evaluation.

Every strategy shipped (and the engine's test strategy) is fed real candles from the
fixtures as a live bot receives them — each timeframe's candles at the close that ends
them, one or a few closes at a time — and every market series is then compared, bit
for bit, with the batch evaluator's over the same candles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinetic_rules.backtest.runner import BacktestRequest, prepare
from kinetic_rules.compile.candle_windows import Tape
from kinetic_rules.compile.evaluate import Evaluator, PairSignals
from kinetic_rules.compile.incremental import IncrementalEvaluator
from kinetic_rules.compile.plan import Plan, build_plan
from kinetic_rules.functions import REGISTRY
from kinetic_rules.lang import ast
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_text
from kinetic_rules.timeframes import timeframe_seconds
from tests.conftest import FIXTURES, STRATEGIES, fixture_candles
from tests.live.test_replay import BUSY

Feed = Callable[[str, str], pd.DataFrame]
SHIPPED = [
    STRATEGIES / "kinetic_empire.yaml",
    STRATEGIES / "kinetic_v3.yaml",
    STRATEGIES / "adaptive_mtf.yaml",
    STRATEGIES / "confluence.yaml",
    BUSY,
]


def closes(frame: pd.DataFrame, timeframe: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(frame.index) + pd.Timedelta(seconds=timeframe_seconds(timeframe))


def needs(plan: Plan, pairs: list[str]) -> list[tuple[str, str]]:
    return sorted({(n.pair or pair, n.timeframe) for pair in pairs for n in plan.data})


def fed(
    plan: Plan,
    feed: Feed,
    pairs: list[str],
    closes_fed: int,
    seed: int,
    sizes: dict[str, int] | None = None,
) -> Iterator[IncrementalEvaluator]:
    """An evaluator given the history up to `closes_fed` closes before the end, then those
    closes as they happen (1–3 at a time, every pair evaluated after each arrival)."""
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(seconds=timeframe_seconds(plan.timeframe))
    frames = {key: feed(*key) for key in needs(plan, pairs)}
    end = max(closes(feed(p, plan.timeframe), plan.timeframe)[-1] for p in pairs)
    moment = end - closes_fed * step
    evaluator = IncrementalEvaluator(plan, sizes or {}, 10**7)
    for key, frame in frames.items():
        evaluator.append(*key, frame[closes(frame, key[1]) <= moment])
    yield evaluator
    while moment < end:
        later = moment + int(rng.integers(1, 4)) * step
        for key, frame in frames.items():
            when = closes(frame, key[1])
            evaluator.append(*key, frame[(when > moment) & (when <= later)])
        moment = later
        yield evaluator


def assert_same(plan: Plan, mine: PairSignals, batch: PairSignals) -> None:
    assert mine.index.equals(batch.index[len(batch.index) - len(mine.index) :])
    for node in plan.market:
        theirs = batch.values[node][len(batch.index) - len(mine.index) :]
        np.testing.assert_array_equal(mine.values[node], theirs, err_msg=repr(node))
    if batch.regime is not None:
        assert mine.regime is not None
        np.testing.assert_array_equal(mine.regime, batch.regime[-len(mine.regime) :])


@pytest.mark.parametrize("strategy", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_series_extended_close_by_close_equal_the_batch(
    fixture_store: Path, strategy: Path
) -> None:
    prepared = prepare(BacktestRequest(strategy, fixture_store))
    plan, feed = prepared.plan, prepared.feed
    pairs = [p for p in prepared.pairs if len(feed(p, plan.timeframe)) > 600]
    for evaluator in fed(plan, feed, pairs, closes_fed=300, seed=7):
        for pair in pairs:
            evaluator.evaluate(pair)
    batch = Evaluator(plan, feed)
    for pair in pairs:
        assert_same(plan, evaluator.evaluate(pair), batch.evaluate(pair))
    assert evaluator.restarts == 0


def test_rolling_windows_keep_the_values_of_every_candle_since_they_were_filled(
    fixture_store: Path,
) -> None:
    """Trimmed windows: the values are those of a batch over all candles since the start
    (an EMA or a latch remembers further back than the window holds); memory stays put."""
    prepared = prepare(BacktestRequest(STRATEGIES / "kinetic_empire.yaml", fixture_store))
    plan, feed, pairs = prepared.plan, prepared.feed, prepared.pairs
    sizes = {"5m": 700, "1h": 120, "1d": 40}
    first: dict[tuple[str, str], pd.Timestamp] = {}
    for count, evaluator in enumerate(fed(plan, feed, pairs, 900, seed=3, sizes=sizes)):
        for pair in pairs:
            evaluator.evaluate(pair)
        if count == 0:  # where each window started: the start of the batch below
            for key in needs(plan, pairs):
                window = evaluator.window(*key)
                assert window is not None
                first[key] = pd.Timestamp(int(window.times.view()[0]), tz="UTC")

    def since_start(pair: str, timeframe: str) -> pd.DataFrame:
        frame = feed(pair, timeframe)
        return frame[frame.index >= first[(pair, timeframe)]]

    batch = Evaluator(plan, since_start)
    for pair in pairs:
        mine = evaluator.evaluate(pair)
        assert len(mine.index) == sizes["5m"]
        assert_same(plan, mine, batch.evaluate(pair))


def test_functions_without_a_stream_are_computed_over_the_window(
    fixture_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback for a function that has no stream: correct, only slower."""
    for name in ("ema", "rsi", "latch", "mean"):
        function = REGISTRY.get(name)
        assert function is not None
        monkeypatch.setitem(REGISTRY._functions, name, dataclasses.replace(function, stream=None))
    prepared = prepare(BacktestRequest(STRATEGIES / "kinetic_empire.yaml", fixture_store))
    plan, feed, pairs = prepared.plan, prepared.feed, prepared.pairs
    for evaluator in fed(plan, feed, pairs, closes_fed=40, seed=1):
        for pair in pairs:
            evaluator.evaluate(pair)
    batch = Evaluator(plan, feed)
    for pair in pairs:
        assert_same(plan, evaluator.evaluate(pair), batch.evaluate(pair))


TEXT = """
metadata: {name: t}
market: {pairs: [SOL/USDT]}
timeframe: 5m
informative: {timeframes: [1h], pairs: [BTC/USDT]}
indicators:
  trend: ema(close, 20)@1h
  since: bars_since(crossed_above(close, ema(close, 30)))
conditions:
  armed: latch(rsi(close, 14) < 35, rsi(close, 14) > 60)
entry:
  long:
    a: armed and close > trend and since < 20 and obv() > obv()[3]
    b: macd_hist(close) > 0 or stoch_k() < 30 or adx() > 25
    c: close[BTC/USDT] > highest(high, 12)[BTC/USDT][1] or zscore(close, 100) < -1
    d: vwap(48) > sma(close, 70) or percentile_rank(volume, 36) > 50
"""


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.integers(1, 40), min_size=1, max_size=25), head=st.integers(1, 400))
def test_any_chunking_of_the_candles_gives_the_batch_values(chunks: list[int], head: int) -> None:
    """Hypothesis draws how many candles arrive between evaluations, from the first on."""
    plan = build_plan(check(load_text(TEXT, "t.yaml")))
    frames = {key: fixture_candles(*key).iloc[:1500] for key in needs(plan, ["SOL/USDT"])}
    base = frames[("SOL/USDT", "5m")]
    bounds = np.cumsum([head, *chunks])
    bounds = [*bounds[bounds < len(base)].tolist(), len(base)]
    evaluator = IncrementalEvaluator(plan, {}, 10**7)
    before = pd.Timestamp.min.tz_localize("UTC")
    for bound in bounds:
        moment = closes(base, "5m")[bound - 1]
        for key, frame in frames.items():
            when = closes(frame, key[1])
            evaluator.append(*key, frame[(when > before) & (when <= moment)])
        evaluator.evaluate("SOL/USDT")
        before = moment

    def feed(pair: str, timeframe: str) -> pd.DataFrame:
        return frames[(pair, timeframe)]

    assert_same(plan, evaluator.evaluate("SOL/USDT"), Evaluator(plan, feed).evaluate("SOL/USDT"))


def small_plan() -> Plan:
    return build_plan(check(load_text(TEXT, "t.yaml")))


def test_a_corrected_candle_makes_every_series_start_over_from_the_windows() -> None:
    plan = small_plan()
    frames = {key: fixture_candles(*key).iloc[:1200] for key in needs(plan, ["SOL/USDT"])}
    evaluator = IncrementalEvaluator(plan, {}, 10**7)
    for key, frame in frames.items():
        evaluator.append(*key, frame)
    evaluator.evaluate("SOL/USDT")
    base = frames[("SOL/USDT", "5m")]
    evaluator.append("SOL/USDT", "5m", base.iloc[-5:])  # sent again, unchanged: ignored
    assert evaluator.restarts == 0
    corrected = base.iloc[[-3]].copy()
    corrected["close"] *= 1.01
    evaluator.append("SOL/USDT", "5m", corrected)
    assert evaluator.restarts == 1
    fixed = {**frames, ("SOL/USDT", "5m"): pd.concat([base.iloc[:-3], corrected, base.iloc[-2:]])}

    def feed(pair: str, timeframe: str) -> pd.DataFrame:
        return fixed[(pair, timeframe)]

    assert_same(plan, evaluator.evaluate("SOL/USDT"), Evaluator(plan, feed).evaluate("SOL/USDT"))


def test_a_late_candle_of_another_timeframe_is_not_missed() -> None:
    """The hourly candle arrives after the 5m close that should have seen it was computed."""
    plan = small_plan()
    five = closes(fixture_candles("SOL/USDT", "5m"), "5m")
    end = five[five.minute == 0][30]
    frames = {}
    for key in needs(plan, ["SOL/USDT"]):
        frame = fixture_candles(*key)
        frames[key] = frame[closes(frame, key[1]) <= end]
    hourly = frames[("SOL/USDT", "1h")]
    assert closes(hourly, "1h")[-1] == end  # the hour ends with the last 5m candle
    evaluator = IncrementalEvaluator(plan, {}, 10**7)
    for key, frame in frames.items():
        evaluator.append(*key, frame if key[1] == "5m" else frame.iloc[:-1])
    evaluator.evaluate("SOL/USDT")
    evaluator.append("SOL/USDT", "1h", hourly.iloc[-1:])
    assert evaluator.restarts == 1

    def feed(pair: str, timeframe: str) -> pd.DataFrame:
        return frames[(pair, timeframe)]

    assert_same(plan, evaluator.evaluate("SOL/USDT"), Evaluator(plan, feed).evaluate("SOL/USDT"))


@given(sizes=st.lists(st.integers(0, 30), max_size=40), size=st.integers(1, 20))
def test_a_tape_keeps_its_last_values_and_never_changes_a_view_handed_out(
    sizes: list[int], size: int
) -> None:
    tape = Tape(size, np.float64)
    everything = np.arange(sum(sizes), dtype=np.float64)
    views: list[tuple[np.ndarray, np.ndarray]] = []
    done = 0
    for count in sizes:
        tape.extend(everything[done : done + count])
        done += count
        expected = everything[max(0, done - size) : done]
        np.testing.assert_array_equal(tape.view(), expected)
        views.append((tape.view(), expected.copy()))
    for view, expected in views:
        np.testing.assert_array_equal(view, expected)


def test_more_candles_between_two_closes_than_a_window_keeps_start_the_series_over() -> None:
    """After a long outage, a window's series cannot be extended over what it dropped."""
    plan = small_plan()
    frames = {key: fixture_candles(*key).iloc[:1500] for key in needs(plan, ["SOL/USDT"])}
    base = frames[("SOL/USDT", "5m")]
    evaluator = IncrementalEvaluator(plan, {"5m": 300}, 10**7)
    for key, frame in frames.items():
        evaluator.append(*key, frame.iloc[:1000] if key == ("SOL/USDT", "5m") else frame)
    evaluator.evaluate("SOL/USDT")
    for start in range(1000, 1400, 100):  # 400 candles in four arrivals, nothing evaluated
        evaluator.append("SOL/USDT", "5m", base.iloc[start : start + 100])
    assert evaluator.restarts == 1
    mine = evaluator.evaluate("SOL/USDT")
    np.testing.assert_array_equal(mine.index, base.index[1100:1400])


GAPPED = """
metadata: {name: t}
market: {pairs: [BTC/USDT]}
timeframe: 15m
informative: {timeframes: [1h], pairs: [ETH/USDT]}
indicators:
  busy: mean(volume, 6h)
  total: sum(volume, 2h)
  top: highest(high, 3h)
  bottom: lowest(low, 3h)@1h
  wobble: std(close, 2h) + zscore(close, 2h)
conditions:
  up: any(close > open, 1h) or all(close > open, 45m)
  green: count(close > open, 2h) > 4
entry:
  long:
    a: volume > busy and total > 0 and close < top and close > bottom and wobble > -9
    b: up or green or percentile_rank(volume, 2h) > 50
    c: vwap(4h) > close or volume_profile_poc(6h) < close
    d: correlation(close, close[ETH/USDT], 4h) > 0.5 or mean(volume, 24) > 0
"""


def gap_frames(plan: Plan) -> dict[tuple[str, str], pd.DataFrame]:
    """The real candles around the exchange's outage of 2023-03-24 (holes kept)."""
    import gzip

    from kinetic_rules.data.readers import read_kline_csv
    from kinetic_rules.data.validate import validate

    frames = {}
    for pair, timeframe in needs(plan, ["BTC/USDT"]):
        name = f"{pair.replace('/', '')}-{timeframe}.csv.gz"
        data = (FIXTURES / "binance-15m-gap" / name).read_bytes()
        frame, _ = validate(read_kline_csv(gzip.decompress(data)), timeframe, name)
        assert frame is not None
        frames[(pair, timeframe)] = frame
    return frames


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.integers(1, 30), min_size=1, max_size=20), head=st.integers(8, 1000))
def test_duration_windows_across_a_gap_equal_the_batch_however_candles_arrive(
    chunks: list[int], head: int
) -> None:
    """Under keep, duration windows are computed on the time grid; fed close by close
    (the outage arriving before or after the first evaluation), every series equals the
    batch bit for bit."""
    plan = build_plan(check(load_text(GAPPED, "t.yaml")))
    assert plan.windows_span_time
    frames = gap_frames(plan)
    base = frames[("BTC/USDT", "15m")]
    bounds = np.cumsum([head, *chunks])
    bounds = [*bounds[bounds < len(base)].tolist(), len(base)]
    evaluator = IncrementalEvaluator(plan, {}, 10**7)
    before = pd.Timestamp.min.tz_localize("UTC")
    for bound in bounds:
        moment = closes(base, "15m")[bound - 1]
        for key, frame in frames.items():
            when = closes(frame, key[1])
            evaluator.append(*key, frame[(when > before) & (when <= moment)])
        evaluator.evaluate("BTC/USDT")
        before = moment

    def feed(pair: str, timeframe: str) -> pd.DataFrame:
        return frames[(pair, timeframe)]

    assert_same(plan, evaluator.evaluate("BTC/USDT"), Evaluator(plan, feed).evaluate("BTC/USDT"))


def test_duration_windows_span_time_only_where_the_file_wants_them_to() -> None:
    """The same file with `durations: candles` counts candles held: the values differ in
    the six hours after the outage only; a window written as a count always counts."""
    spanning = build_plan(check(load_text(GAPPED, "t.yaml")))
    counting = build_plan(check(load_text(GAPPED + "backtest: {durations: candles}\n", "t.yaml")))
    frames = gap_frames(spanning)

    def feed(pair: str, timeframe: str) -> pd.DataFrame:
        return frames[(pair, timeframe)]

    busy = spanning.strategy.indicators["busy"].node
    counted = counting.strategy.indicators["busy"].node
    assert isinstance(busy, ast.Call) and busy.spans_time
    time = Evaluator(spanning, feed).evaluate("BTC/USDT", extra=(busy,))
    candles = Evaluator(counting, feed).evaluate("BTC/USDT", extra=(counted,))
    # (elsewhere they agree up to rounding: a sum over the grid carries the hole's zeros)
    differ = ~np.isclose(time.values[busy], candles.values[counted], rtol=1e-9, equal_nan=True)
    after = time.index[differ]
    # exactly the six hours after the outage (12:45 .. 13:45 missing) see a different window
    assert after[0] == pd.Timestamp("2023-03-24 14:00", tz="UTC")
    assert after[-1] < pd.Timestamp("2023-03-24 20:00", tz="UTC")
    means = [n for r in spanning.market for n in r.walk() if isinstance(n, ast.Call)]
    means = [n for n in means if n.func == "mean"]
    assert {n.spans_time for n in means} == {False, True}  # 24 counts candles; 6h is time
