"""`download` of funding rates, mark-price candles and market rules, through the real ccxt
client (binanceusdm for futures, binance for spot) against the stand-in on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.data.download import download
from kinetic_rules.data.futures_store import FuturesStore
from kinetic_rules.data.store import CandleStore
from kinetic_rules.market_rules import MarketRules
from tests.data.test_cli import run
from tests.data.test_download import Recorder
from tests.standin import ExchangeStandin
from tests.standin.market import to_ms

FEB = pd.Timestamp("2024-02-01", tz="UTC")
FUNDING = "/fapi/v1/fundingRate"
MARK = "/fapi/v1/markPriceKlines"


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(timeframes=("1h",)) as exchange:
        exchange.clock.set("2024-03-01 00:30")
        yield exchange


@pytest.fixture
def usdm(standin: ExchangeStandin) -> Any:
    return standin.ccxt_futures_client()


def test_a_futures_download_stores_funding_mark_candles_and_the_rules(
    usdm: Any, store: CandleStore, standin: ExchangeStandin
) -> None:
    standin.futures.set_mark_ratio("BTCUSDT", "1.01")
    futures, recorder = FuturesStore(store.root), Recorder()
    summary = download(
        usdm, store, ["BTC/USDT"], ["1h"], start=FEB, retry=recorder.policy(),
        progress=recorder, futures=futures,
    )  # fmt: skip
    assert not summary.failed and summary.markets == 1
    candles = store.read("binanceusdm", "BTC/USDT", "1h")
    assert len(candles) == 29 * 24  # February 2024, up to the last closed hour
    mark = futures.mark.read("binanceusdm", "BTC/USDT", "1h")
    assert mark.index.equals(candles.index)
    for column in ("open", "high", "low", "close"):
        np.testing.assert_allclose(mark[column], candles[column] * 1.01, rtol=1e-9)
    funding = futures.read_funding("binanceusdm", "BTC/USDT")
    assert funding is not None
    wanted = pd.date_range(FEB, pd.Timestamp("2024-03-01", tz="UTC"), freq="8h")
    assert list(funding.index) == list(wanted)  # 00:00 of March 1 has happened; 08:00 not yet
    assert (funding["rate"] == 0.0001).all() and (funding["interval_hours"] == 8).all()
    assert len(standin.requests(FUNDING)) == 1  # 88 funding times fit one page
    spec = standin.market.symbols["BTCUSDT"]
    assert futures.read_markets("binanceusdm") == {
        "BTC/USDT": MarketRules(
            tick_size=float(spec.tick_size),
            amount_step=float(spec.step_size),
            min_notional=float(spec.min_notional),
            min_amount=float(spec.step_size),
        )
    }
    shown = {(c[1], c[2]) for c in recorder.calls if c[0] == "finish"}
    assert shown == {("BTC/USDT", "1h"), ("BTC/USDT", "mark 1h"), ("BTC/USDT", "funding")}
    by_label = {(o.pair, o.timeframe): o for o in summary.series}
    assert by_label[("BTC/USDT", "funding")].added == len(wanted)
    assert by_label[("BTC/USDT", "mark 1h")].what == "mark candles"


def test_the_next_download_fetches_only_the_new_funding_times_and_mark_candles(
    usdm: Any, store: CandleStore, standin: ExchangeStandin
) -> None:
    futures = FuturesStore(store.root)
    download(usdm, store, ["BTC/USDT"], ["1h"], start=FEB, retry=Recorder().policy(),
             futures=futures)  # fmt: skip
    first_funding, first_mark = len(standin.requests(FUNDING)), len(standin.requests(MARK))
    standin.futures.funding_rate["BTCUSDT"] = standin.futures.rate("BTCUSDT") * 3
    standin.clock.set("2024-03-02 00:30")
    summary = download(usdm, store, ["BTC/USDT"], ["1h"], retry=Recorder().policy(),
                       futures=futures)  # fmt: skip
    asked = standin.requests(FUNDING)[first_funding:]
    assert len(asked) == 1
    assert int(asked[0].params["startTime"]) == to_ms("2024-03-01 00:00")  # the last held
    marks = standin.requests(MARK)[first_mark:]
    assert [int(r.params["startTime"]) for r in marks] == [to_ms("2024-03-01 00:00")]
    funding = futures.read_funding("binanceusdm", "BTC/USDT")
    assert funding is not None
    assert funding["rate"][:"2024-03-01 00:00"].eq(0.0001).all()  # held rows are kept
    assert list(funding["rate"]["2024-03-01 00:01":]) == pytest.approx([0.0003] * 3)
    assert len(futures.mark.read("binanceusdm", "BTC/USDT", "1h")) == 30 * 24
    added = {o.timeframe: o.added for o in summary.series}
    assert added == {"1h": 24, "mark 1h": 24, "funding": 3}


def test_a_perpetual_named_with_its_settlement_is_stored_under_the_strategys_pair(
    usdm: Any, store: CandleStore
) -> None:
    """One convention: candles, funding, mark prices and rules all under ETH/USDT, where a
    futures strategy naming ETH/USDT finds them; a later download by either name resumes."""
    futures = FuturesStore(store.root)
    start = pd.Timestamp("2024-02-28", tz="UTC")
    summary = download(usdm, store, ["ETH/USDT:USDT"], ["1h"], start=start,
                       retry=Recorder().policy(), futures=futures)  # fmt: skip
    assert {o.pair for o in summary.series} == {"ETH/USDT"}
    assert [s.pair for s in store.available()] == ["ETH/USDT"]
    assert len(store.load("binanceusdm", "ETH/USDT", "1h")) == 48  # Feb 28 and 29
    assert futures.funding_pairs("binanceusdm") == ["ETH/USDT"]
    assert futures.mark.find("binanceusdm", "ETH/USDT", "1h") is not None
    assert set(futures.read_markets("binanceusdm") or {}) == {"ETH/USDT"}
    again = download(usdm, store, ["ETH/USDT"], ["1h"], start=start, retry=Recorder().policy(),
                     futures=futures)  # fmt: skip
    candles = next(o for o in again.series if o.timeframe == "1h")
    assert candles.requested == 0 and candles.added == 0
    assert [s.pair for s in store.available()] == ["ETH/USDT"]


def test_a_spot_download_saves_the_rules_and_nothing_futures(
    standin: ExchangeStandin, store: CandleStore
) -> None:
    client = standin.ccxt_client()
    futures = FuturesStore(store.root)
    summary = download(client, store, ["ETH/USDT"], ["1h"], start=FEB, retry=Recorder().policy(),
                       futures=futures)  # fmt: skip
    assert [(o.pair, o.timeframe) for o in summary.series] == [("ETH/USDT", "1h")]
    rules = (futures.read_markets("binance") or {})["ETH/USDT"]
    assert rules.tick_size == float(standin.market.symbols["ETHUSDT"].tick_size)
    assert futures.funding_pairs("binance") == []
    assert futures.mark.available() == []
    assert not standin.requests(FUNDING) and not standin.requests(MARK)


def test_the_download_command_shows_and_stores_the_futures_series(
    standin: ExchangeStandin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    where = ["--data", str(root), "--exchange-url", standin.url]
    args = ["download", "--exchange", "binanceusdm", "--pairs", "BTC/USDT", "--timeframes", "1h",
            "--timerange", "20240228-", *where]  # fmt: skip
    code, out, err = run(capsys, *args)
    assert code == 0, err
    # Feb 28 00:00 to Mar 1 00:00, every 8 hours; not a terminal: one line per series
    assert "BTC/USDT funding: +7 funding rates in 1 request" in err
    assert "BTC/USDT mark 1h: +48 mark candles in 1 request" in err
    assert "market rules of 1 pair saved in" in out
    futures = FuturesStore(root)
    assert futures.funding_pairs("binanceusdm") == ["BTC/USDT"]
    assert set(futures.read_markets("binanceusdm") or {}) == {"BTC/USDT"}
    code, out, _ = run(capsys, "data", "list", "--data", str(root))
    assert code == 0
    assert "binanceusdm   BTC/USDT   funding   2024-02-28 00:00   2024-03-01 00:00" in out
    assert "binanceusdm   BTC/USDT   mark 1h   2024-02-28 00:00   2024-02-29 23:00" in out
    code, out, _ = run(capsys, "data", "list", "--data", str(root), "--timeframes", "1h")
    assert "funding" not in out and "mark 1h" in out

    code, out, err = run(capsys, *args[:-4], "--data", str(tmp_path / "other"), "--candles-only",
                         "--exchange-url", standin.url)  # fmt: skip
    assert code == 0, err
    assert "funding" not in err and "mark" not in err
    assert not (tmp_path / "other" / "funding").exists()
    assert not (tmp_path / "other" / "markets").exists()
