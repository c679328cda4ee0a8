"""PaperFuturesBroker: a simulated margin account on the futures stand-in's live order book,
mark price and funding, read through the real ccxt client; nothing reaches the account."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kinetic_rules.engine.fills import FillModel
from kinetic_rules.engine.orders import OrderKind
from kinetic_rules.live.broker import OrderRequest, Side
from kinetic_rules.live.futures import FuturesSettings
from kinetic_rules.live.paper_futures import PaperFuturesBroker
from kinetic_rules.margin import liquidation_price
from kinetic_rules.persist import TradeStore
from tests.standin import ExchangeStandin
from tests.standin.simtime import SimTime

PAIR, SYMBOL = "BTC/USDT", "BTCUSDT"
START = "2024-03-01 00:00:10"
DEPOSIT = 10_000.0
MAINTENANCE = 0.005
FILLS = FillModel(
    fee=0.0004, slippage=0.0005, entry_limit=True, exit_limit=True, entry_timeout=2, exit_timeout=2
)
BOOK_BIDS = [(61_000.0, 0.5), (60_990.0, 0.5)]
BOOK_ASKS = [(61_010.0, 0.5), (61_020.0, 0.5)]


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=(PAIR, "ETH/USDT"), timeframes=("15m",)) as exchange:
        exchange.clock.set(START)
        exchange.market.set_book(SYMBOL, bids=BOOK_BIDS, asks=BOOK_ASKS)
        exchange.futures.funding_rate[SYMBOL] = Decimal(0)
        yield exchange


def futures_client(standin: ExchangeStandin) -> Any:
    """The client `run` makes for a futures strategy: binance with spot and linear markets."""
    options = {"fetchMarkets": {"types": ["spot", "linear"]}, "fetchCurrencies": False}
    return standin.ccxt_client(options=options)


def make_broker(standin: ExchangeStandin, **settings: Any) -> PaperFuturesBroker:
    settings.setdefault("sleep", SimTime().sleep)
    return PaperFuturesBroker(
        futures_client(standin),
        settings=settings.pop("futures", FuturesSettings()),
        maintenance=MAINTENANCE,
        fills=FILLS,
        stake_currency="USDT",
        balance=settings.pop("balance", DEPOSIT),
        clock=lambda: pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC"),
        rate_limit_ms=0,
        **settings,
    )


def order(
    client_id: str, side: Side, opening: bool, amount: float, kind: OrderKind = "market",
    **prices: float,
) -> OrderRequest:  # fmt: skip
    leverage = prices.pop("leverage", 5.0) if opening else None
    return OrderRequest(client_id, PAIR, side, opening, kind, amount, leverage=leverage, **prices)


def mark_now(standin: ExchangeStandin) -> float:
    return float(standin.futures.mark_now(SYMBOL))


def untouched(standin: ExchangeStandin) -> bool:
    """Paper: no order, leverage or margin request ever reached the exchange."""
    private = ("/fapi/v1/order", "/fapi/v1/algoOrder", "/fapi/v1/leverage", "/fapi/v1/marginType")
    return not any(standin.requests(path) for path in private)


def test_a_short_opens_on_the_book_with_its_leverage_margin_and_liquidation_price(
    standin: ExchangeStandin,
) -> None:
    broker = make_broker(standin)
    sold = broker.place(order("kr-1", "short", True, 0.6, leverage=5.0))
    walked = (0.5 * 61_000.0 + 0.1 * 60_990.0) / 0.6
    price = walked * (1 - FILLS.slippage)  # a sell pays the model's slippage below the book
    assert (sold.status, sold.filled) == ("closed", 0.6)
    assert sold.average == pytest.approx(price, rel=1e-12)
    (held,) = broker.positions() or []
    assert (held.pair, held.side, held.amount, held.leverage) == (PAIR, "short", 0.6, 5.0)
    assert held.margin_mode == "isolated" and held.entry_price == pytest.approx(price)
    assert held.liquidation_price == pytest.approx(liquidation_price(price, 5, MAINTENANCE, -1.0))
    fee = 0.6 * price * FILLS.fee
    assert broker.total_balance("USDT") == pytest.approx(DEPOSIT - fee)
    assert broker.free_balance("USDT") == pytest.approx(DEPOSIT - fee - 0.6 * price / 5)
    assert untouched(standin)


def test_the_stop_rests_reduce_only_on_the_mark_price_and_fires_when_the_mark_moves(
    standin: ExchangeStandin,
) -> None:
    broker = make_broker(standin)
    broker.place(order("kr-1", "short", True, 0.2))
    mark = mark_now(standin)
    trigger = round(mark * 1.01, 2)
    stop = broker.place(order("kr-s", "short", False, 0.2, "stop", stop_price=trigger))
    assert stop.status == "open"
    standin.clock.advance(2_000)
    assert broker.fetch("kr-s", PAIR).status == "open"  # the mark has not moved
    standin.futures.set_mark_ratio(SYMBOL, "1.02")  # the mark rises past it; the last does not
    standin.clock.advance(2_000)
    fired = broker.fetch("kr-s", PAIR)
    assert (fired.status, fired.filled) == ("closed", 0.2)
    assert fired.raw["log"][0]["triggered_at_mark"] == pytest.approx(mark * 1.02, rel=1e-6)
    assert fired.average == pytest.approx(61_010.0 * (1 + FILLS.slippage))  # the asks, bought
    assert broker.positions() == []
    # a stop that would trigger at once is refused, as the exchange refuses it
    broker.place(order("kr-2", "short", True, 0.2))
    again = broker.place(order("kr-s2", "short", False, 0.2, "stop", stop_price=trigger))
    assert again.status == "rejected" and "trigger immediately" in again.reason
    assert untouched(standin)


def test_a_stop_on_the_contract_price_ignores_the_mark(standin: ExchangeStandin) -> None:
    broker = make_broker(standin, futures=FuturesSettings("isolated", "contract"))
    broker.place(order("kr-1", "long", True, 0.2))
    last = float(standin.market.last_price(SYMBOL) or 0)
    broker.place(order("kr-s", "long", False, 0.2, "stop", stop_price=round(last * 0.99, 2)))
    standin.futures.set_mark_ratio(SYMBOL, "0.97")
    standin.clock.advance(2_000)
    assert broker.fetch("kr-s", PAIR).status == "open"
    standin.market.set_last(SYMBOL, last * 0.98)
    standin.clock.advance(2_000)
    assert broker.fetch("kr-s", PAIR).status == "closed"


def test_take_profits_reduce_only_and_an_order_that_would_increase_or_flip_is_refused(
    standin: ExchangeStandin,
) -> None:
    broker = make_broker(standin)
    broker.place(order("kr-1", "short", True, 0.4))
    half = broker.place(order("kr-tp", "short", False, 0.2))
    assert (half.status, half.filled) == ("closed", 0.2)
    (held,) = broker.positions() or []
    assert (held.side, held.amount) == ("short", pytest.approx(0.2))
    flip = broker.place(order("kr-x1", "short", False, 0.3))  # more than the position holds
    more = broker.place(order("kr-x2", "long", False, 0.1))  # a reduce-only sell adds to it
    for refused in (flip, more):
        assert refused.status == "rejected" and "ReduceOnly Order is rejected" in refused.reason
    (held,) = broker.positions() or []
    assert (held.side, held.amount) == ("short", pytest.approx(0.2))
    # a stop resting for more than is left closes only the rest and expires
    mark = mark_now(standin)
    broker.place(order("kr-s", "short", False, 0.2, "stop", stop_price=round(mark * 1.01, 2)))
    broker.place(order("kr-tp2", "short", False, 0.1))
    standin.futures.set_mark_ratio(SYMBOL, "1.02")
    standin.clock.advance(2_000)
    stop = broker.fetch("kr-s", PAIR)
    assert (stop.status, stop.filled) == ("expired", pytest.approx(0.1))
    assert broker.positions() == []


def test_insufficient_margin_is_tried_once_more_at_half_the_size(standin: ExchangeStandin) -> None:
    broker = make_broker(standin, balance=3_000.0)
    # 0.4 BTC at 5x needs about 4,880 USDT of margin; half of it fits in 3,000
    halved = broker.place(order("kr-1", "long", True, 0.4))
    assert (halved.status, halved.amount, halved.filled) == ("closed", 0.2, 0.2)
    too_big = broker.place(order("kr-2", "short", True, 2.0, leverage=1.0))
    assert too_big.status == "rejected" and "Margin is insufficient" in too_big.reason
    assert too_big.amount == 1.0  # the one retry asked for half
    (held,) = broker.positions() or []
    assert (held.side, held.amount) == ("long", 0.2)


def test_a_position_is_liquidated_when_the_mark_reaches_its_liquidation_price(
    standin: ExchangeStandin,
) -> None:
    broker = make_broker(standin)
    broker.place(order("kr-1", "long", True, 0.5, leverage=10.0))
    (held,) = broker.positions() or []
    assert held.liquidation_price is not None
    margin = held.amount * held.entry_price / 10
    wallet = broker.total_balance("USDT")
    far = round(held.liquidation_price * 0.95, 2)  # a stop beyond the liquidation price
    broker.place(order("kr-s", "long", False, 0.5, "stop", stop_price=far))
    ratio = held.liquidation_price * 0.999 / mark_now(standin)
    standin.futures.set_mark_ratio(SYMBOL, f"{ratio:.6f}")
    standin.clock.advance(2_000)
    assert broker.positions() == []
    assert broker.fetch("kr-s", PAIR).status == "canceled"  # the exchange cancels its orders
    assert broker.total_balance("USDT") == pytest.approx(wallet - margin)
    (record,) = broker.account.liquidations
    assert record.price == pytest.approx(held.liquidation_price)


def test_funding_is_charged_at_funding_times_at_the_exchanges_rate(
    standin: ExchangeStandin,
) -> None:
    standin.futures.funding_rate[SYMBOL] = Decimal("0.001")
    standin.futures.funding_ms = 3_600_000
    broker = make_broker(standin)
    opened = pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")
    broker.place(order("kr-1", "short", True, 0.2))
    wallet = broker.total_balance("USDT")
    for _ in range(5):  # five looks, one every 30 minutes: the hours 01:00 and 02:00 pass
        standin.clock.advance(30 * 60_000)
        broker.poll()
    paid = broker.funding(PAIR, opened)
    charges = broker.account.charges
    assert [pd.Timestamp(c.time, unit="ms").hour for c in charges] == [1, 2]
    marks = [float(standin.futures._mark_at(SYMBOL, c.time)) for c in charges]
    assert paid == pytest.approx(sum(-0.2 * m * 0.001 for m in marks))  # a short receives
    assert broker.total_balance("USDT") == pytest.approx(wallet - paid)


def test_a_restart_restores_positions_orders_leverage_and_wallet(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    with TradeStore(f"sqlite:///{tmp_path / 't.sqlite'}") as store:
        first = make_broker(standin, journal=store, journal_key="paper-broker:test")
        first.place(order("kr-1", "short", True, 0.3, leverage=3.0))
        trigger = round(mark_now(standin) * 1.05, 2)
        first.place(order("kr-s", "short", False, 0.3, "stop", stop_price=trigger))
        before = (first.positions(), first.open_orders(), first.total_balance("USDT"))
        del first
        second = make_broker(standin, journal=store, journal_key="paper-broker:test", balance=1.0)
        after = (second.positions(), second.open_orders(), second.total_balance("USDT"))
    assert after[0] == before[0] and after[0] and after[0][0].leverage == 3.0
    assert [o.client_id for o in after[1]] == ["kr-s"] == [o.client_id for o in before[1]]
    assert after[2] == before[2]


def test_a_position_saved_before_its_first_look_owes_the_funding_times_since_it_opened(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    """The process died right after the entry filled, before it read the next funding
    time; it comes back after two funding times: both are charged, once."""
    standin.futures.funding_rate[SYMBOL] = Decimal("0.001")
    standin.futures.funding_ms = 3_600_000
    with TradeStore(f"sqlite:///{tmp_path / 't.sqlite'}") as store:
        first = make_broker(standin, journal=store, journal_key="paper-broker:test")
        first.place(order("kr-1", "long", True, 0.2))
        first.account.next_funding.clear()
        first._save()  # as saved at the kill: the position, no funding time seen yet
        standin.clock.advance(2 * 3_600_000)
        second = make_broker(standin, journal=store, journal_key="paper-broker:test")
        second.poll()
        second.poll()
    charges = second.account.charges
    assert [pd.Timestamp(c.time, unit="ms").hour for c in charges] == [1, 2]
    assert all(c.paid > 0 for c in charges)  # a long pays a positive rate
