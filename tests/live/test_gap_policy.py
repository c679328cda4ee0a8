"""The gap policy on real candles with a real gap (the exchange's outage of 2023-03-24):
stated in every report, the same in a backtest, a replay and a live window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.backtest.runner import BacktestRequest, prepare, simulate
from kinetic_rules.cli.app import main
from kinetic_rules.compile.evaluate import Evaluator
from kinetic_rules.data.store import CandleStore
from kinetic_rules.live.source import ReplaySource
from kinetic_rules.live.window import WindowSource
from kinetic_rules.timeframes import timeframe_seconds
from tests.conftest import FIXTURES
from tests.live.test_replay import fingerprint, replay

GAPPY = Path(__file__).parent / "strategies" / "gappy.yaml"  # backtest.gaps: fill
OUTAGE = pd.Timestamp("2023-03-24 12:45", tz="UTC")


@pytest.fixture(scope="module")
def gap_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gap-store")
    args = ["data", "import", "--quiet", "--data", str(root), str(FIXTURES / "binance-15m-gap")]
    assert main(args) == 0
    return root


@pytest.mark.parametrize("gaps", ["keep", "fill"])
def test_replay_equals_backtest_across_a_gap(gap_store: Path, gaps: str) -> None:
    request = BacktestRequest(GAPPY, gap_store, gaps=gaps)
    prepared = prepare(request)
    backtest = simulate(prepared.plan, prepared.feed, prepared.pairs)
    live = replay(request)
    assert len(backtest.trades) >= 5
    assert any(t.entry_time < OUTAGE < (t.exit_time or OUTAGE) for t in backtest.trades)
    assert [fingerprint(t) for t in live.trades()] == [fingerprint(t) for t in backtest.trades]


def test_the_policy_changes_what_the_strategy_reads(gap_store: Path) -> None:
    kept = prepare(BacktestRequest(GAPPY, gap_store, gaps="keep"))
    filled = prepare(BacktestRequest(GAPPY, gap_store))  # the file says fill
    assert (kept.plan.gaps, filled.plan.gaps) == ("keep", "fill")
    assert len(filled.feed("BTC/USDT", "15m")) == len(kept.feed("BTC/USDT", "15m")) + 5
    assert len(filled.feed("BTC/USDT", "1h")) == len(kept.feed("BTC/USDT", "1h")) + 1
    a = simulate(kept.plan, kept.feed, kept.pairs)
    b = simulate(filled.plan, filled.feed, filled.pairs)
    assert [fingerprint(t) for t in a.trades] != [fingerprint(t) for t in b.trades]


def test_every_report_states_the_policy_and_the_candles_filled_per_pair(
    gap_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "report"
    base = ["backtest", str(GAPPY), "--data", str(gap_store), "--quiet"]
    assert main([*base, "--report", str(folder)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Gaps fill: 10 missing candles filled at the previous close, volume 0" in text
    assert "(BTC/USDT 5, ETH/USDT 5)" in text
    results = json.loads((folder / "results.json").read_text())
    assert results["assumptions"]["gaps"] == {
        "policy": "fill",
        "durations": "time",
        "candles": {"BTC/USDT": 5, "ETH/USDT": 5},
    }
    assert "fill: 10 missing candles filled" in (folder / "report.html").read_text()
    assert main([*base, "--gaps", "keep", "--report", str(folder)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Gaps keep: 10 missing candles left out (windows written as durations cover" in text
    results = json.loads((folder / "results.json").read_text())
    assert results["assumptions"]["gaps"]["policy"] == "keep"


@pytest.mark.parametrize("gaps", ["fill", "keep"])
def test_a_live_window_treats_a_gap_as_the_backtest_does(gap_store: Path, gaps: str) -> None:
    """Candles arrive from the store as a live session reads them, holes and all; at each
    close every series the window holds equals the replay's, through the outage."""
    prepared = prepare(BacktestRequest(GAPPY, gap_store, gaps=gaps))
    plan, pairs = prepared.plan, prepared.pairs
    store = CandleStore(gap_store)
    needs = sorted({(n.pair or pair, n.timeframe) for pair in pairs for n in plan.data})
    raw = {key: store.read("binance", *key) for key in needs}

    def closes(frame: pd.DataFrame, timeframe: str) -> pd.DatetimeIndex:
        return frame.index + pd.Timedelta(seconds=timeframe_seconds(timeframe))

    cut = OUTAGE - pd.Timedelta(hours=6)
    history = {key: f[closes(f, key[1]) <= cut] for key, f in raw.items()}
    window = WindowSource(plan, pairs, history, sizes={tf: 100_000 for tf in plan.warmup})
    replayed = ReplaySource(plan, prepared.feed, pairs)
    moment, checked = cut, 0
    while moment < OUTAGE + pd.Timedelta(hours=6):
        moment += pd.Timedelta(minutes=15)
        for key, frame in raw.items():
            arriving = frame[closes(frame, key[1]) == moment]
            if len(arriving):
                window.add(*key, arriving)
        step = window.refresh()
        live = window.as_of(step)
        seen = replayed.as_of(int(replayed.timeline.searchsorted(window.timeline[step])))
        for pair in pairs:
            for node, values in live[pair].signals.values.items():
                np.testing.assert_array_equal(values, seen[pair].signals.values[node])
            np.testing.assert_array_equal(live[pair].allowed, seen[pair].allowed)
        checked += 1
    assert checked == 48
    if gaps == "keep":  # the first hole: duration windows start over on the time grid, once
        assert window._evaluator.restarts == 1
        stored = raw[("BTC/USDT", "15m")]
        held = window._feed("BTC/USDT", "15m")  # the stored candles, nothing invented
        assert held.index.equals(stored.index[closes(stored, "15m") <= moment])
        return
    # the hourly candle the outage swallowed was filled when the base candles after the
    # outage closed, before anything read it: no series had to start over
    assert window._evaluator.restarts == 0
    assert window._feed("BTC/USDT", "1h").loc["2023-03-24 13:00", "volume"] == 0
    minutes = window._feed("BTC/USDT", "15m").loc[OUTAGE : OUTAGE + pd.Timedelta(hours=1)]
    assert len(minutes) == 5 and (minutes["volume"] == 0).all()


@pytest.mark.parametrize(
    ("gaps", "durations", "reach", "divisor"),
    [
        ("fill", "time", "6h", 24),  # 19 candles held and 5 filled ones with no volume
        ("keep", "time", "6h", 19),  # the 19 candles held in the six hours
        ("keep", "candles", "7h15min", 24),  # the last 24 candles held, across the hole
    ],
)
def test_what_a_duration_window_covers_after_the_outage(
    gap_store: Path, tmp_path: Path, gaps: str, durations: str, reach: str, divisor: int
) -> None:
    """`mean(volume, 6h)` on the first candle after the outage, under each policy."""
    strategy = tmp_path / "gappy.yaml"
    text = GAPPY.read_text().replace("gaps: fill}", f"gaps: fill, durations: {durations}}}")
    strategy.write_text(text)
    prepared = prepare(BacktestRequest(strategy, gap_store, gaps=gaps))
    busy = prepared.plan.strategy.indicators["busy"].node
    signals = Evaluator(prepared.plan, prepared.feed).evaluate("BTC/USDT", extra=(busy,))
    after = pd.Timestamp("2023-03-24 14:00", tz="UTC")
    value = signals.values[busy][signals.index.get_loc(after)]
    volume = CandleStore(gap_store).read("binance", "BTC/USDT", "15m")["volume"]
    window = volume[(volume.index > after - pd.Timedelta(reach)) & (volume.index <= after)]
    assert len(window) == (19 if reach == "6h" else 24)
    assert value == pytest.approx(window.sum() / divisor, rel=1e-12)
    later = pd.Timestamp("2023-03-25 00:00", tz="UTC")  # the hole has left the window
    expected = volume[(volume.index > later - pd.Timedelta("6h")) & (volume.index <= later)]
    at_later = signals.values[busy][signals.index.get_loc(later)]
    assert at_later == pytest.approx(expected.mean(), rel=1e-12)
