"""`data import` of the exchange's funding-rate and mark-price files, and `data
import-markets`: stored beside the candles, never mixed with them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.cli.app import main
from kinetic_rules.data.futures_store import FuturesStore
from kinetic_rules.data.store import CandleStore
from kinetic_rules.market_rules import MarketRules
from tests.conftest import FIXTURES

FUTURES = FIXTURES / "binance-futures"


def test_funding_and_mark_files_are_stored_beside_the_candles(futures_store: Path) -> None:
    store = FuturesStore(futures_store)
    btc = store.read_funding("binance", "BTC/USDT")
    assert btc is not None
    # February's plain CSV and March's zip, every 8 hours from 2024-02-15 to 2024-03-14 16:00
    assert len(btc) == 87
    assert btc.index[0] == pd.Timestamp("2024-02-15", tz="UTC")
    assert btc.index[-1] == pd.Timestamp("2024-03-14 16:00", tz="UTC")
    assert (btc.index.to_series().diff().dropna() == pd.Timedelta(hours=8)).all()
    assert btc["rate"].iloc[0] == pytest.approx(0.0001)
    assert (btc["interval_hours"] == 8).all()
    assert store.funding_pairs("binance") == ["BTC/USDT", "ETH/USDT"]
    mark = store.load_mark("binance", "BTC/USDT", "15m")
    assert mark is not None and len(mark) == 2784
    assert store.load_mark("binance", "ETH/USDT", "15m") is None
    # a 1h mark series is built from the stored 15m one, as candles are
    hourly = store.load_mark("binance", "BTC/USDT", "1h")
    assert hourly is not None and len(hourly) == 2784 // 4
    # the candle store lists candles only: no mark or funding series among them
    kinds = {(s.pair, s.timeframe) for s in CandleStore(futures_store).available()}
    assert ("BTC/USDT", "15m") in kinds
    traded = CandleStore(futures_store).read("binance", "BTC/USDT", "15m")
    assert not traded["open"].equals(mark["open"])  # the mark price is its own series


def test_importing_the_same_funding_files_again_adds_nothing(tmp_path: Path) -> None:
    args = ["data", "import", "--quiet", "--data", str(tmp_path)]
    assert main([*args, str(FUTURES / "BTCUSDT-fundingRate-2024-02.csv")]) == 0
    assert main([*args, str(FUTURES)]) == 0
    assert main([*args, str(FUTURES)]) == 0
    funding = FuturesStore(tmp_path).read_funding("binance", "BTC/USDT")
    assert funding is not None and len(funding) == 87


def test_a_funding_file_with_a_bad_rate_is_rejected_and_nothing_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "in" / "SOLUSDT-fundingRate-2024-02.csv"
    bad.parent.mkdir()
    bad.write_text(
        "calc_time,funding_interval_hours,last_funding_rate\n"
        "1707955200000,8,0.0001\n1707984000000,8,3.5\n"
    )
    store = tmp_path / "store"
    assert main(["data", "import", "--data", str(store), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "✗ SOLUSDT-fundingRate-2024-02.csv (SOL/USDT funding): rejected" in out
    assert "3.5" in out
    assert FuturesStore(store).read_funding("binance", "SOL/USDT") is None


def test_a_file_named_as_funding_without_the_funding_header_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "BTCUSDT-fundingRate-2024-02.csv"
    wrong.write_text("1707955200000,51795.17,51888.66,51763.47,51870.2,341.2\n")
    assert main(["data", "import", "--data", str(tmp_path / "s"), str(wrong)]) == 1
    assert "expected 'calc_time,funding_interval_hours,last_funding_rate'" in (
        capsys.readouterr().out
    )


def test_kline_files_become_mark_prices_with_the_mark_flag(tmp_path: Path) -> None:
    candles = FIXTURES / "binance-15m-csv" / "ETHUSDT-15m.csv.gz"
    assert main(["data", "import", "-q", "--mark", "--data", str(tmp_path), str(candles)]) == 0
    assert FuturesStore(tmp_path).load_mark("binance", "ETH/USDT", "15m") is not None
    assert CandleStore(tmp_path).find("binance", "ETH/USDT", "15m") is None


def test_market_rules_import_from_our_file_and_from_exchange_info(tmp_path: Path) -> None:
    ours = FIXTURES / "binance-markets.json"
    assert main(["data", "import-markets", "-q", "--data", str(tmp_path), str(ours)]) == 0
    rules = FuturesStore(tmp_path).read_markets("binance")
    assert rules is not None
    assert rules["BTC/USDT"] == MarketRules(0.01, 0.00001, 5.0, 0.00001)
    info = {
        "symbols": [
            {
                "symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT",
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": "0.10"},
                    {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001"},
                    {"filterType": "MIN_NOTIONAL", "notional": "100"},
                ],
            }
        ]
    }  # fmt: skip
    path = tmp_path / "exchangeInfo.json"
    path.write_text(json.dumps(info))
    args = ["data", "import-markets", "-q", "--exchange", "binanceusdm", "--data", str(tmp_path)]
    assert main([*args, str(path)]) == 0
    futures = FuturesStore(tmp_path).read_markets("binanceusdm")
    assert futures == {"BTC/USDT": MarketRules(0.1, 0.001, 100.0, 0.001)}
    assert FuturesStore(tmp_path).read_markets("binance") == rules  # untouched


def test_a_markets_file_that_is_not_one_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"markets": {"BTC/USDT": {"tick": -1}}}')
    assert main(["data", "import-markets", "--data", str(tmp_path), str(path)]) == 2
    assert "not a markets file" in capsys.readouterr().err
