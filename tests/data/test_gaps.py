"""Filling missing candles the way freqtrade does, on the real candles around an outage."""

from __future__ import annotations

import gzip
import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.data.gaps import FILLED_ATTR, fill_gaps, gap_candles
from kinetic_rules.data.readers import read_kline_csv
from kinetic_rules.data.validate import validate
from tests.data.helpers import FIXTURES

GAP_DIR = FIXTURES / "binance-15m-gap"
OUTAGE = pd.date_range("2023-03-24 12:45", "2023-03-24 13:45", freq="15min", tz="UTC")


def real(name: str, timeframe: str) -> pd.DataFrame:
    raw = read_kline_csv(gzip.decompress((GAP_DIR / name).read_bytes()))
    frame, report = validate(raw, timeframe, name)
    assert frame is not None and report.missing_candles > 0
    return frame


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return real("BTCUSDT-15m.csv.gz", "15m")


def test_every_missing_candle_is_a_no_trade_candle_at_the_previous_close(
    btc: pd.DataFrame,
) -> None:
    filled = fill_gaps(btc, "15m")
    assert filled.attrs[FILLED_ATTR] == 5 and len(filled) == len(btc) + 5
    assert (np.diff(filled.index.asi8) == 15 * 60 * 10**9).all()  # one candle every 15m
    before = btc.loc["2023-03-24 12:30"]
    inserted = filled.loc[OUTAGE]
    for column in ("open", "high", "low", "close"):
        assert (inserted[column] == before["close"]).all()
    assert (inserted["volume"] == 0).all() and (inserted["quote_volume"] == 0).all()
    pd.testing.assert_frame_equal(filled.drop(OUTAGE), btc)  # the real candles, untouched
    assert gap_candles(filled, "15m", "fill") == 5
    assert gap_candles(btc, "15m", "keep") == 5


def test_candles_without_gaps_are_handed_out_as_they_are(btc: pd.DataFrame) -> None:
    whole = btc.loc[:"2023-03-24 12:30"]
    assert fill_gaps(whole, "15m") is whole and whole.attrs[FILLED_ATTR] == 0


def test_the_hourly_candle_the_outage_swallowed_is_filled_too() -> None:
    hourly = fill_gaps(real("BTCUSDT-1h.csv.gz", "1h"), "1h")
    assert hourly.attrs[FILLED_ATTR] == 1
    missing = hourly.loc["2023-03-24 13:00"]
    assert missing["volume"] == 0 and missing["open"] == hourly.loc["2023-03-24 12:00", "close"]


ETH = real("ETHUSDT-15m.csv.gz", "15m")


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(1, 1338), min_size=1, max_size=6, unique=True))
def test_filling_piece_by_piece_as_candles_arrive_equals_filling_at_once(
    cuts: list[int],
) -> None:
    """A live window fills each arrival against its newest candle; a backtest fills all
    history at once. Both must give the same candles, wherever the arrivals split."""
    frame = ETH
    holes = frame.drop(frame.index[[100, 101, 102, 700]])  # more holes, of real candles
    whole = fill_gaps(holes.copy(), "15m")
    pieces, previous = [], None
    after_hole = np.flatnonzero(np.diff(holes.index.asi8) > 15 * 60 * 10**9) + 1
    assert len(after_hole) == 3  # the outage and the holes cut here; each arrives on its own
    bounds = [0, *sorted(set(cuts) | set(after_hole.tolist())), len(holes)]
    for part in (holes.iloc[a:b] for a, b in itertools.pairwise(bounds)):
        if not len(part):
            continue
        filled = fill_gaps(part.copy(), "15m", previous)
        pieces.append(filled)
        previous = (int(filled.index[-1].value), float(filled["close"].iloc[-1]))
    pd.testing.assert_frame_equal(pd.concat(pieces), whole, check_freq=False)
