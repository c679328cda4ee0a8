"""Kinetic Empire v3's market scanner (seed 001, properties 1 and 2) on real 15m candles.

Property 1: only pairs whose volume exceeds 1.5 times its 20-candle average are kept.
Property 2: only pairs whose absolute 24-hour price change exceeds 1% are kept.
Both are checked against the candles themselves, computed here with pandas, at closes
hypothesis picks from the recorded data, for the shipped settings and for others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.backtest.runner import BacktestRequest, prepare, simulate
from kinetic_rules.engine.pairs import prepare_market
from tests.conftest import STRATEGIES

V3 = STRATEGIES / "kinetic_v3.yaml"
PAIRS = ["BTC/USDT", "ETH/USDT"]
DAY = 96  # 15-minute candles in 24 hours


@dataclass(frozen=True)
class Scanned:
    spike: float
    min_move: float
    candles: dict[str, pd.DataFrame]  # the recorded 15m candles, as stored
    allowed: dict[str, np.ndarray]  # per pair and candle: on the shortlist at that close


def scan(store: Path, spike: float, min_move: float) -> Scanned:
    overrides = {"spike": str(spike), "min_move": str(min_move)}
    prepared = prepare(BacktestRequest(V3, store, pairs=PAIRS, overrides=overrides))
    market = prepare_market(prepared.plan, prepared.feed, prepared.pairs)
    candles = {p: prepared.feed(p, "15m") for p in PAIRS}
    allowed = {d.pair: d.allowed for d in market.pairs}
    for pair in PAIRS:
        assert len(allowed[pair]) == len(candles[pair])
    return Scanned(spike, min_move, candles, allowed)


@pytest.fixture(scope="module", params=[(1.5, 0.01), (2.5, 0.03)], ids=["shipped", "stricter"])
def scanned(fixture_store: Path, request: pytest.FixtureRequest) -> Scanned:
    spike, min_move = request.param
    return scan(fixture_store, spike, min_move)


def volume_spike(candles: pd.DataFrame, spike: float) -> pd.Series:
    volume = candles["volume"]
    return volume > spike * volume.rolling(20).mean()


def moved(candles: pd.DataFrame, min_move: float) -> pd.Series:
    close = candles["close"]
    return (close / close.shift(DAY) - 1).abs() > min_move


@settings(max_examples=100, deadline=None)
@given(pair=st.sampled_from(PAIRS), at=st.floats(0.0, 1.0, exclude_max=True))
def test_the_shortlist_is_exactly_the_pairs_on_a_volume_spike_that_moved_1_percent(
    scanned: Scanned, pair: str, at: float
) -> None:  # properties 1 and 2
    candles = scanned.candles[pair]
    i = int(at * len(candles))
    spiking = bool(volume_spike(candles, scanned.spike).iloc[i])
    moving = bool(moved(candles, scanned.min_move).iloc[i])
    assert bool(scanned.allowed[pair][i]) == (spiking and moving)


def test_both_filters_keep_some_closes_and_drop_others(scanned: Scanned) -> None:
    """The property test above is not vacuous: on the recorded data each filter decides."""
    for pair, candles in scanned.candles.items():
        allowed = scanned.allowed[pair]
        spiking = volume_spike(candles, scanned.spike).to_numpy()
        moving = moved(candles, scanned.min_move).to_numpy()
        assert allowed.any() and not allowed.all()
        assert (spiking & ~moving).any() and (moving & ~spiking).any()  # each one drops some
        assert not (allowed & ~spiking).any() and not (allowed & ~moving).any()


def test_every_trade_was_entered_on_a_close_the_scanner_kept(fixture_store: Path) -> None:
    prepared = prepare(BacktestRequest(V3, fixture_store, pairs=PAIRS))
    result = simulate(prepared.plan, prepared.feed, prepared.pairs)
    assert len(result.trades) >= 20
    for trade in result.trades:
        candles = prepared.feed(trade.pair, "15m")
        i = candles.index.get_loc(trade.signal_time)
        assert volume_spike(candles, 1.5).iloc[i], trade  # property 1
        assert moved(candles, 0.01).iloc[i], trade  # property 2
