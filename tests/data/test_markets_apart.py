"""Spot and futures candles of one pair share a name in the store (a perpetual's candles are
stored under BTC/USDT, where a strategy finds them), so the store records which market a
series holds and refuses the other: a futures backtest must never read spot prices."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kinetic_rules.data.download import download
from kinetic_rules.data.importers import import_paths
from kinetic_rules.data.store import CandleStore
from kinetic_rules.errors import DataError
from tests.data.helpers import FEATHER_DIR
from tests.data.test_download import Recorder
from tests.standin import ExchangeStandin

SPOT_FILE = FEATHER_DIR / "BTC_USDT-1h.feather"


def _futures_copy(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "BTC_USDT_USDT-1h-futures.feather"
    shutil.copyfile(SPOT_FILE, target)
    return target


def test_the_market_is_recorded_and_survives_a_rebuilt_index(store: CandleStore) -> None:
    import_paths([SPOT_FILE], store)
    (store.root / "index.json").unlink()
    held = store.find("binance", "BTC/USDT", "1h")
    assert held is not None and held.market == "spot"
    assert [s.market for s in store.available()] == ["spot"]


def test_futures_candles_are_refused_where_spot_ones_are_stored(
    store: CandleStore, tmp_path: Path
) -> None:
    import_paths([SPOT_FILE], store)
    before = store.read("binance", "BTC/USDT", "1h")
    summary = import_paths([_futures_copy(tmp_path / "futures")], store)
    [outcome] = summary.rejected
    assert outcome.error is not None and "holds spot candles" in outcome.error
    assert "--data" in outcome.error
    assert store.read("binance", "BTC/USDT", "1h").equals(before)


def test_one_import_may_not_hold_both_markets_of_a_pair(store: CandleStore, tmp_path: Path) -> None:
    folder = tmp_path / "both"
    _futures_copy(folder)
    shutil.copyfile(SPOT_FILE, folder / SPOT_FILE.name)
    summary = import_paths([folder], store)
    assert len(summary.rejected) == 1
    assert "both" in (summary.rejected[0].error or "")


def test_a_series_of_unknown_market_takes_the_first_market_named(
    store: CandleStore, tmp_path: Path
) -> None:
    scratch = CandleStore(tmp_path / "scratch")
    import_paths([SPOT_FILE], scratch)
    frame = scratch.read("binance", "BTC/USDT", "1h").iloc[:100]
    store.write("binance", "BTC/USDT", "1h", frame)  # an old store: no market recorded
    assert store.find("binance", "BTC/USDT", "1h").market is None  # type: ignore[union-attr]
    import_paths([_futures_copy(tmp_path / "f")], store)
    assert store.find("binance", "BTC/USDT", "1h").market == "futures"  # type: ignore[union-attr]
    with pytest.raises(DataError, match="holds futures candles"):
        store.write("binance", "BTC/USDT", "1h", frame, market="spot")


def test_the_kline_files_of_either_market_are_named_by_the_market_flag(
    store: CandleStore, tmp_path: Path
) -> None:
    import_paths([SPOT_FILE], store)
    summary = import_paths([SPOT_FILE], store, market="futures")
    assert summary.rejected and "holds spot candles" in (summary.rejected[0].error or "")


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(timeframes=("1h",)) as exchange:
        exchange.clock.set("2024-03-01 00:30")
        yield exchange


def test_downloading_a_perpetual_over_its_spot_pair_stops_before_any_request(
    standin: ExchangeStandin, store: CandleStore
) -> None:
    start = pd.Timestamp("2024-02-27", tz="UTC")
    spot: Any = standin.ccxt_client()
    download(spot, store, ["ETH/USDT"], ["1h"], start=start, retry=Recorder().policy())
    held = store.find("binance", "ETH/USDT", "1h")
    assert held is not None and held.market == "spot"
    both: Any = standin.ccxt_client(
        options={"fetchMarkets": {"types": ["spot", "linear"]}, "fetchCurrencies": False}
    )
    before = store.read("binance", "ETH/USDT", "1h")
    with pytest.raises(DataError, match="holds spot candles"):
        download(both, store, ["ETH/USDT:USDT"], ["1h"], start=start, retry=Recorder().policy())
    assert store.read("binance", "ETH/USDT", "1h").equals(before)
