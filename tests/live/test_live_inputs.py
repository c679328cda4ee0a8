"""Live-only inputs in a running session: a paper session reads the order book the
exchange serves at each close, and a rule reading `spread` and `book_imbalance` enters
exactly when that book says it should (backtests leave them undefined)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from kinetic_rules.compile.plan import build_plan
from kinetic_rules.data.store import CandleStore
from kinetic_rules.lang.checker import check
from kinetic_rules.live.session import TradingSession
from kinetic_rules.spec.loader import load_file
from tests.standin.exchange import ExchangeStandin

BOOK_READER = Path(__file__).parent / "strategies" / "book_reader.yaml"
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
START = pd.Timestamp("2024-03-05 00:00:10", tz="UTC")

Book = tuple[list[tuple[float, float]], list[tuple[float, float]]]


def _book(mid: float, spread: float, bid_amount: float, ask_amount: float) -> Book:
    """A five-level book around `mid` whose touch is `spread` wide (as a fraction of ask)."""
    ask = mid * (1 + spread / 2)
    bid = ask * (1 - spread)
    step = mid * 0.0001
    bids = [(bid - i * step, bid_amount) for i in range(5)]
    asks = [(ask + i * step, ask_amount) for i in range(5)]
    return bids, asks


def test_a_paper_session_enters_exactly_when_the_served_book_says_so(tmp_path: Path) -> None:
    plan = build_plan(check(load_file(BOOK_READER)))
    assert plan.live_inputs == {"spread", "book_imbalance"}
    good = range(4, 9)  # the cycles at whose close BTC's book is tight and leans to buyers
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)
        market = standin.market

        def now() -> pd.Timestamp:
            return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

        def sleep(seconds: float) -> None:
            standin.clock.advance(int(seconds * 1000))

        def serve(cycle: int) -> None:
            """The books the exchange shows at this cycle's close."""
            for pair in PAIRS:
                mid = market.last_price(pair.replace("/", "")) or 1.0
                if pair == "BTC/USDT" and cycle in good:
                    book = _book(mid, 0.0005, 3.0, 1.0)  # tight, buyers: enter
                elif pair == "BTC/USDT":
                    book = _book(mid, 0.0005, 1.0, 3.0)  # tight, sellers: wait
                elif pair == "ETH/USDT":
                    book = _book(mid, 0.002, 3.0, 1.0)  # buyers, but too wide: wait
                else:
                    book = _book(mid, 0.0005, 1.0, 1.0)  # tight, balanced: wait
                market.set_book(pair.replace("/", ""), *book)

        session = TradingSession(
            plan, standin.ccxt_client(), CandleStore(tmp_path), PAIRS, clock=now, sleep=sleep,
            sizes={"5m": 5_000},
        )  # fmt: skip
        session.start()
        assert session.runtime is not None
        decided_at: list[pd.Timestamp] = []
        for cycle in range(14):
            serve(cycle)
            session.sleep(session._until_next_close())  # the close comes; the book is read
            report = session.cycle()
            assert report is not None
            if report.decided:
                decided_at.append(report.time)
        trades = session.runtime.trades()
        assert session.live_inputs is not None
        assert session.live_inputs.seconds_spent > 0
    good_closes = [START.ceil("5min") + pd.Timedelta(minutes=5 * c) for c in good]
    # A pair holds one trade at a time: the one opened at a close leaves at the next
    # (bars_held >= 1), so BTC enters at every other close of its good book, no other.
    expected = good_closes[::2]
    assert {t.pair for t in trades} == {"BTC/USDT"}
    assert decided_at == expected
    assert sorted(t.entry_time for t in trades) == expected  # market orders: at the close


def test_a_backtest_leaves_live_inputs_undefined(tmp_path: Path) -> None:
    from kinetic_rules.backtest.runner import simulate

    plan = build_plan(check(load_file(BOOK_READER)))
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START + pd.Timedelta(hours=3))
        store = CandleStore(tmp_path)
        from kinetic_rules.data.download import download

        download(standin.ccxt_client(), store, PAIRS, ["5m"], days=1)

    result = simulate(plan, lambda p, tf: store.read("binance", p, tf), PAIRS)
    assert result.trades == []


class _Exchange:
    """A ccxt-shaped client: tickers for every pair, and SOL's book out of reach."""

    id = "fake"
    has: ClassVar[dict[str, bool]] = {"fetchTickers": True}
    urls: ClassVar[dict[str, str]] = {"api": "https://127.0.0.1:9"}

    def fetch_tickers(self, pairs: list[str]) -> dict[str, dict[str, float]]:
        return {p: {"bid": 99.0, "ask": 100.0} for p in pairs}

    def fetch_order_book(self, pair: str, limit: int) -> dict[str, list[list[float]]]:
        import ccxt

        if pair == "SOL/USDT":
            raise ccxt.ExchangeNotAvailable("maintenance")
        return {"bids": [[99.5, 3.0], [99.0, 3.0]], "asks": [[100.0, 1.0], [100.5, 1.0]]}


def test_inputs_come_from_the_book_top_and_an_unreadable_book_leaves_them_undefined() -> None:
    from kinetic_rules.data.exchange import RetryPolicy
    from kinetic_rules.live.inputs import LiveInputs

    reader = LiveInputs(
        _Exchange(), frozenset({"spread", "book_imbalance"}),
        retry=RetryPolicy(attempts=2, base_delay=0.0, sleep=lambda _: None),
    )  # fmt: skip
    values = reader.read(["BTC/USDT", "SOL/USDT"])
    assert values["BTC/USDT"] == {"spread": pytest.approx(0.005), "book_imbalance": 0.5}
    assert values["SOL/USDT"] == {
        "spread": pytest.approx(0.01)
    }  # the ticker's touch; no book, no imbalance
    spread_only = LiveInputs(_Exchange(), frozenset({"spread"}))
    assert spread_only.read(["SOL/USDT"]) == {
        "SOL/USDT": {"spread": pytest.approx(0.01)}
    }  # no book asked


SPREAD_SCANNER = Path(__file__).parent / "strategies" / "spread_scanner.yaml"


def test_the_scanner_drops_a_wide_book_at_a_refresh_and_takes_it_back_when_it_narrows(
    tmp_path: Path,
) -> None:
    """refresh: 15m on 5m candles: the closes of cycles 2, 5, 8 and 11 are refreshes."""
    plan = build_plan(check(load_file(SPREAD_SCANNER)))
    assert plan.scanner_inputs == {"spread"} and not plan.live_inputs
    pairs = ["BTC/USDT", "ETH/USDT"]
    wide = range(3, 7)  # the cycles at whose close ETH's book is 0.5% wide
    with ExchangeStandin.from_fixtures(pairs=tuple(pairs), timeframes=("5m",)) as standin:
        standin.clock.set(START)
        market = standin.market
        session = TradingSession(
            plan, standin.ccxt_client(), CandleStore(tmp_path), pairs,
            clock=lambda: pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC"),
            sleep=lambda seconds: standin.clock.advance(int(seconds * 1000)),
            sizes={"5m": 5_000},
        )  # fmt: skip
        session.start()
        assert session.runtime is not None
        allowed: dict[str, list[bool]] = {pair: [] for pair in pairs}
        for cycle in range(12):
            for pair in pairs:
                mid = market.last_price(pair.replace("/", "")) or 1.0
                spread = 0.005 if pair == "ETH/USDT" and cycle in wide else 0.0002
                market.set_book(pair.replace("/", ""), *_book(mid, spread, 1.0, 1.0))
            session.sleep(session._until_next_close())
            report = session.cycle()
            assert report is not None
            view = session.runtime.source.as_of(len(session.runtime.source.timeline) - 1)
            for pair in pairs:
                allowed[pair].append(bool(view[pair].allowed[-1]))
        first_close = START.ceil("5min")
        decided = [
            (
                (t.signal_time + pd.Timedelta(minutes=5) - first_close) // pd.Timedelta(minutes=5),
                t.pair,
            )
            for t in session.runtime.trades()
        ]
    assert allowed["BTC/USDT"] == [True] * 12
    # wide at cycles 3 and 4 changes nothing until the refresh of cycle 5; narrow again at
    # cycle 7, it is taken back at the refresh of cycle 8
    assert allowed["ETH/USDT"] == [True] * 5 + [False] * 3 + [True] * 4
    eth = [cycle for cycle, pair in decided if pair == "ETH/USDT"]
    assert eth and not [cycle for cycle in eth if 5 <= cycle <= 7]
    assert any(cycle >= 8 for cycle in eth) and any(cycle < 5 for cycle in eth)


class _Futures:
    """A ccxt-shaped futures client: bids and asks in one call, and funding history."""

    id = "fake"
    has: ClassVar[dict[str, bool]] = {"fetchBidsAsks": True, "fetchFundingRateHistory": True}

    def __init__(self) -> None:
        self.funding_calls = 0

    def fetch_bids_asks(self, pairs: list[str]) -> dict[str, dict[str, float]]:
        return {f"{p}:USDT": {"bid": 99.0, "ask": 100.0} for p in pairs}  # perpetuals' names

    def fetch_funding_rate_history(
        self, pair: str, since: int | None, limit: int
    ) -> list[dict[str, float]]:
        self.funding_calls += 1
        eight = 8 * 3_600_000
        day = int(pd.Timestamp("2024-03-05", tz="UTC").value // 1_000_000)
        times = [day, day + eight, day + 2 * eight]
        rates = [0.0001, 0.0002, 0.0003]
        return [{"timestamp": t, "fundingRate": r} for t, r in zip(times, rates, strict=True)]


def test_bid_ask_and_the_latest_funding_rate_are_read_once_per_funding_interval() -> None:
    from kinetic_rules.live.inputs import LiveInputs

    exchange = _Futures()
    reader = LiveInputs(exchange, frozenset({"bid", "ask", "spread", "funding_rate"}))
    at = pd.Timestamp("2024-03-05 09:00", tz="UTC")  # after the 08:00 funding time
    values = reader.read(["BTC/USDT"], at=at)
    assert values == {
        "BTC/USDT": {
            "bid": 99.0, "ask": 100.0, "spread": pytest.approx(0.01), "funding_rate": 0.0002
        }
    }  # fmt: skip
    for minutes in (5, 60, 6 * 60):  # until the next funding time, the rate is known
        reader.read(["BTC/USDT"], at=at + pd.Timedelta(minutes=minutes))
    assert exchange.funding_calls == 1
    later = reader.read(["BTC/USDT"], at=pd.Timestamp("2024-03-05 16:00", tz="UTC"))
    assert later["BTC/USDT"]["funding_rate"] == 0.0003 and exchange.funding_calls == 2
    only_bid = reader.read(["BTC/USDT"], frozenset({"bid"}), at=at)
    assert only_bid == {"BTC/USDT": {"bid": 99.0}}


def test_a_futures_session_reads_the_touch_and_the_funding_rate_from_the_futures_api() -> None:
    from decimal import Decimal

    from kinetic_rules.live.inputs import LiveInputs

    with ExchangeStandin.from_fixtures(pairs=("BTC/USDT",), timeframes=("15m",)) as standin:
        standin.clock.set(pd.Timestamp("2024-03-01 09:00", tz="UTC"))
        standin.futures.funding_rate["BTCUSDT"] = Decimal("0.0003")
        client = standin.ccxt_futures_client()
        names = frozenset({"bid", "ask", "funding_rate"})
        reader = LiveInputs(client, names)

        def read() -> dict[str, float]:
            at = pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")
            return reader.read(["BTC/USDT"], at=at)["BTC/USDT"]

        first = read()
        assert first["funding_rate"] == pytest.approx(0.0003)
        assert 0 < first["bid"] < first["ask"]
        standin.futures.funding_rate["BTCUSDT"] = Decimal("0.0005")
        standin.clock.advance(6 * 3_600_000)  # 15:00: the 08:00 rate still holds
        assert read()["funding_rate"] == pytest.approx(0.0003)
        assert len(standin.requests("/fapi/v1/fundingRate")) == 1
        standin.clock.advance(3_600_000)  # 16:00: a new funding time
        assert read()["funding_rate"] == pytest.approx(0.0005)
        assert len(standin.requests("/fapi/v1/fundingRate")) == 2
        assert standin.requests("/fapi/v1/ticker/bookTicker")  # one batched call per read
