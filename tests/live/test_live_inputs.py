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
