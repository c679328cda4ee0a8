"""Downloads through the real ccxt client, against the exchange stand-in on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.data.download import SeriesOutcome, _among, download
from kinetic_rules.data.exchange import RetryPolicy, create_exchange
from kinetic_rules.data.importers import import_paths
from kinetic_rules.data.store import CandleStore
from kinetic_rules.errors import ConfigError, ExchangeError
from tests.data.helpers import CSV_DIR, assert_same_candles, csv_lines, snapshot
from tests.standin import ExchangeStandin

KLINES = "/api/v3/klines"
JAN = pd.Timestamp("2024-01-01", tz="UTC")
EARLY = pd.Timestamp("2017-01-01", tz="UTC")  # before any recorded candle


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures() as exchange:
        yield exchange


@pytest.fixture
def client(standin: ExchangeStandin) -> Any:
    exchange = create_exchange("binance", api_url=standin.url)
    exchange.rateLimit = 1  # ccxt's limiter stays on, scaled down for the test
    return exchange


@pytest.fixture
def expected(tmp_path_factory: pytest.TempPathFactory) -> CandleStore:
    """What the stand-in serves, imported from the same recorded files."""
    store = CandleStore(tmp_path_factory.mktemp("expected"))
    import_paths([CSV_DIR], store)
    return store


class Recorder:
    """A Progress that remembers every call, and a sleep that never sleeps."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.notes: list[str] = []
        self.sleeps: list[float] = []

    def start(self, pair: str, timeframe: str, total: int) -> None:
        self.calls.append(("start", pair, timeframe, str(total)))

    def advance(self, pair: str, timeframe: str, done: int) -> None:
        self.calls.append(("advance", pair, timeframe, str(done)))

    def finish(self, pair: str, timeframe: str, outcome: SeriesOutcome) -> None:
        self.calls.append(("finish", pair, timeframe, str(outcome.added)))

    def note(self, message: str) -> None:
        self.notes.append(message)

    def policy(self, attempts: int = 6) -> RetryPolicy:
        return RetryPolicy(attempts=attempts, base_delay=0.5, sleep=self.sleeps.append)


def test_the_store_holds_exactly_the_served_candles(
    client: Any, store: CandleStore, expected: CandleStore, standin: ExchangeStandin
) -> None:
    recorder = Recorder()
    summary = download(
        client,
        store,
        ["BTC/USDT", "ETH/USDT"],
        ["15m", "1h", "1d"],
        start=EARLY,
        retry=recorder.policy(),
        progress=recorder,
    )
    assert not summary.failed
    for pair in ("BTC/USDT", "ETH/USDT"):
        for tf in ("15m", "1h", "1d"):
            got = store.read("binance", pair, tf)
            assert_same_candles(got, expected.read("binance", pair, tf))
            assert got.attrs["quote_volume_estimated"] is False  # the exchange's own klines
    outcome = summary.series[0]
    recorded = expected.read("binance", "BTC/USDT", "15m")
    assert (outcome.pair, outcome.timeframe, outcome.added) == ("BTC/USDT", "15m", len(recorded))
    before_recording = (recorded.index[0] - EARLY) // pd.Timedelta(minutes=15)
    assert outcome.absent == before_recording  # asked for, confirmed absent, not stored
    daily = len(csv_lines("BTCUSDT-1d.csv.gz"))
    assert ("finish", "BTC/USDT", "1d", str(daily)) in recorder.calls
    assert recorder.calls[0] == ("start", "BTC/USDT", "15m", str(outcome.requested))
    assert all(int(r.params["limit"]) == 1000 for r in standin.requests(KLINES))


def test_only_what_is_missing_is_fetched(
    client: Any, store: CandleStore, expected: CandleStore, standin: ExchangeStandin
) -> None:
    standin.clock.set("2024-03-01 00:30")  # mid-candle: the 00:00 hour is still forming
    download(client, store, ["BTC/USDT"], ["1h"], start=JAN, retry=Recorder().policy())
    first_run = len(standin.requests(KLINES))
    assert first_run == 2  # 1,416 hours in pages of 1,000
    assert store.find("binance", "BTC/USDT", "1h").last == pd.Timestamp(  # type: ignore[union-attr]
        "2024-02-29 23:00", tz="UTC"
    )

    standin.clock.set("2024-03-15")
    summary = download(client, store, ["BTC/USDT"], ["1h"], start=JAN, retry=Recorder().policy())
    second_run = standin.requests(KLINES)[first_run:]
    assert len(second_run) == 1
    assert (
        int(second_run[0].params["startTime"])
        == pd.Timestamp("2024-03-01", tz="UTC").value // 10**6
    )
    assert summary.series[0].added == 14 * 24
    assert_same_candles(
        store.read("binance", "BTC/USDT", "1h"), expected.read("binance", "BTC/USDT", "1h")
    )

    summary = download(client, store, ["BTC/USDT"], ["1h"], start=JAN, retry=Recorder().policy())
    assert len(standin.requests(KLINES)) == first_run + 1  # nothing missing: nothing asked
    assert summary.series[0].requested == 0


def test_a_hole_in_the_store_is_filled(
    client: Any, store: CandleStore, expected: CandleStore
) -> None:
    full = expected.read("binance", "ETH/USDT", "1h")
    store.write("binance", "ETH/USDT", "1h", full.drop(full.index[100:130]))
    summary = download(client, store, ["ETH/USDT"], ["1h"], start=JAN, retry=Recorder().policy())
    assert summary.series[0].added == 30 and summary.series[0].requests == 1
    assert_same_candles(store.read("binance", "ETH/USDT", "1h"), full)


def test_server_errors_and_rate_limits_are_retried_with_backoff(
    client: Any, store: CandleStore, expected: CandleStore, standin: ExchangeStandin
) -> None:
    recorder = Recorder()
    standin.faults.fail_next(3, status=503, path=KLINES)
    standin.faults.rate_limit_next(1, retry_after=7, path=KLINES)
    download(
        client, store, ["BTC/USDT"], ["1d"], start=EARLY, retry=recorder.policy(), progress=recorder
    )
    assert recorder.sleeps == [0.5, 1.0, 2.0, 7.0]  # doubling, then the 429's Retry-After
    assert [r.status for r in standin.requests(KLINES)] == [503, 503, 503, 429, 200]
    assert "rate limited; retrying in 7.0s (attempt 5 of 6)" in recorder.notes[-1]
    assert_same_candles(
        store.read("binance", "BTC/USDT", "1d"), expected.read("binance", "BTC/USDT", "1d")
    )


def test_timeouts_and_malformed_answers_are_retried(
    client: Any, store: CandleStore, expected: CandleStore, standin: ExchangeStandin
) -> None:
    recorder = Recorder()
    client.timeout = 300  # ms
    standin.faults.delay_next(1, seconds=2.0, path=KLINES)
    standin.faults.malformed_next(1, path=KLINES)
    standin.faults.malformed_next(1, body="<html>502 Bad Gateway</html>", path=KLINES)
    download(
        client, store, ["ETH/USDT"], ["1d"], start=EARLY, retry=recorder.policy(), progress=recorder
    )
    assert len(recorder.sleeps) == 3
    assert ["timed out" in recorder.notes[0], "malformed answer" in recorder.notes[1]] == [
        True,
        True,
    ]
    assert_same_candles(
        store.read("binance", "ETH/USDT", "1d"), expected.read("binance", "ETH/USDT", "1d")
    )


def test_a_permanent_error_stops_with_a_clear_message_and_the_store_intact(
    client: Any, store: CandleStore, expected: CandleStore, standin: ExchangeStandin
) -> None:
    store.write("binance", "BTC/USDT", "1h", expected.read("binance", "BTC/USDT", "1h").iloc[:500])
    before = snapshot(store.root)
    standin.faults.reject_next(1, code=-1121, msg="Invalid symbol.", path=KLINES)
    with pytest.raises(
        ExchangeError,
        match=r"binance: BTC/USDT 1h candles from 2024-01-21 20:00 failed: .*Invalid symbol",
    ) as caught:
        download(client, store, ["BTC/USDT"], ["1h"], start=JAN, retry=Recorder().policy())
    assert caught.value.temporary is False
    assert snapshot(store.root) == before


def test_what_was_fetched_before_a_failure_is_kept_and_consistent(
    client: Any, store: CandleStore, expected: CandleStore, standin: ExchangeStandin
) -> None:
    standin.faults.fail_next(10, path=KLINES, after=1)  # the exchange goes down after a page
    with pytest.raises(ExchangeError, match="gave up after 3 attempts") as caught:
        download(
            client,
            store,
            ["BTC/USDT"],
            ["15m"],
            start=pd.Timestamp("2024-02-15", tz="UTC"),
            retry=Recorder().policy(attempts=3),
        )
    assert caught.value.temporary is True
    kept = store.read("binance", "BTC/USDT", "15m")
    assert len(kept) == 1000  # the first page, validated and stored; the rest next time
    assert_same_candles(kept, expected.read("binance", "BTC/USDT", "15m").iloc[:1000])


def test_unknown_pairs_and_timeframes_are_config_errors(client: Any, store: CandleStore) -> None:
    with pytest.raises(ConfigError, match="binance has no market XRP/USDT"):
        download(client, store, ["XRP/USDT"], ["1h"], retry=Recorder().policy())
    with pytest.raises(ConfigError, match=r"binance has no 7m candles|unknown timeframe '7m'"):
        download(client, store, ["BTC/USDT"], ["7m"], retry=Recorder().policy())
    assert store.available() == []


def test_other_exchanges_go_through_ccxts_unified_candles(
    client: Any, store: CandleStore, expected: CandleStore, standin: ExchangeStandin
) -> None:
    client.id = "standin"  # not binance: the unified fetch_ohlcv path, without quote volume
    download(client, store, ["ETH/USDT"], ["1d"], start=EARLY, retry=Recorder().policy())
    got = store.read("standin", "ETH/USDT", "1d")
    assert_same_candles(got, expected.read("binance", "ETH/USDT", "1d"), quote=False)
    assert got.attrs["quote_volume_estimated"] is True
    np.testing.assert_array_equal(got["quote_volume"], got["volume"] * got["close"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-50, 50), max_size=40),
    st.sets(st.integers(-50, 50), max_size=40),
)
def test_a_page_keeps_exactly_the_candles_still_missing(times: list[int], wanted: set[int]) -> None:
    """Which candles of a page are kept: what np.isin says, without its sort per page."""
    page = np.array(times, dtype=np.int64)
    missing = np.array(sorted(wanted), dtype=np.int64)
    np.testing.assert_array_equal(_among(page, missing), np.isin(page, missing))
