"""CcxtBroker places real orders through the real ccxt client, against the stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from kinetic_rules.engine.orders import OrderKind
from kinetic_rules.errors import ConfigError, ExchangeError
from kinetic_rules.live.broker import OrderRequest
from kinetic_rules.live.ccxt_broker import CcxtBroker, broker_from_env
from tests.standin import ExchangeStandin
from tests.standin.account import API_KEY, API_SECRET
from tests.standin.market import to_ms
from tests.standin.simtime import SimTime

PAIR = "BTC/USDT"
ORDER = "/api/v3/order"
QUARTER = 15 * 60_000
START = "2024-03-01 00:00"
FEE = 0.001


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=(PAIR, "ETH/USDT"), timeframes=("15m",)) as exchange:
        exchange.clock.set(START)
        exchange.account.deposit("USDT", 10_000)
        yield exchange


@pytest.fixture
def broker(standin: ExchangeStandin) -> CcxtBroker:
    sim = SimTime()
    client = standin.ccxt_client(apiKey=API_KEY, secret=API_SECRET)
    return CcxtBroker(client, stake_currency="USDT", clock=sim.clock, sleep=sim.sleep)


def candle(standin: ExchangeStandin, at: str, symbol: str = "BTCUSDT") -> tuple[float, ...]:
    """(open, high, low, close) of the recorded 15m candle opening at `at`."""
    series = standin.market.series[(symbol, "15m")]
    row = series.rows[list(series.open_times).index(to_ms(at))]
    return tuple(float(str(v)) for v in row[1:5])


def buy(
    client_id: str, kind: OrderKind = "market", amount: float = 0.01, **prices: float
) -> OrderRequest:
    return OrderRequest(client_id, PAIR, "long", True, kind, amount, **prices)


def sell(
    client_id: str, kind: OrderKind = "market", amount: float = 0.01, **prices: float
) -> OrderRequest:
    return OrderRequest(client_id, PAIR, "long", False, kind, amount, **prices)


def test_market_orders_fill_at_once_and_balances_follow(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    price = candle(standin, START)[0]  # the open of the candle in progress
    bought = broker.place(buy("kr-1"))
    assert (bought.status, bought.kind, bought.filled, bought.average) == (
        "closed",
        "market",
        0.01,
        price,
    )
    assert bought.fee == pytest.approx(0.01 * price * FEE)
    assert broker.free_balance("BTC") == 0.01
    assert broker.free_balance("USDT") == pytest.approx(10_000 - 0.01 * price * (1 + FEE))
    sold = broker.place(sell("kr-2"))  # an emergency exit
    assert (sold.status, sold.filled) == ("closed", 0.01)
    assert broker.free_balance("BTC") == 0.0
    assert broker.free_balance("USDT") == pytest.approx(10_000 - 2 * 0.01 * price * FEE)
    again = broker.fetch("kr-1", PAIR)  # fees of a fetched order come from its trades
    assert again.fee == pytest.approx(bought.fee) and again.exchange_id == bought.exchange_id


def test_a_limit_rests_then_fills_when_a_candle_trades_through(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    open_, _, low, _ = candle(standin, START)
    limit = round((open_ + low) / 2, 2)
    placed = broker.place(buy("kr-entry", "limit", price=limit))
    assert (placed.status, placed.filled, placed.kind) == ("open", 0.0, "limit")
    assert standin.account.locked("USDT") == pytest.approx(0.01 * limit * (1 + FEE))
    assert [o.client_id for o in broker.open_orders(PAIR)] == ["kr-entry"]
    assert broker.fetch("kr-entry", PAIR).status == "open"  # the candle has not closed yet
    standin.clock.advance(QUARTER)
    filled = broker.fetch("kr-entry", PAIR)
    assert (filled.status, filled.filled, filled.average) == ("closed", 0.01, limit)
    assert filled.fee == pytest.approx(0.01 * limit * FEE)
    assert filled.updated is not None and filled.updated.value // 1_000_000 == to_ms(START)
    assert broker.free_balance("BTC") == 0.01
    assert broker.free_balance("USDT") == pytest.approx(10_000 - 0.01 * limit * (1 + FEE))
    assert broker.open_orders() == []


def test_a_limit_that_is_not_reached_is_canceled(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    low = candle(standin, START)[2]
    broker.place(buy("kr-low", "limit", price=round(low - 500, 2)))
    standin.clock.advance(QUARTER)
    canceled = broker.cancel("kr-low", PAIR)
    assert (canceled.status, canceled.filled, canceled.client_id) == ("canceled", 0.0, "kr-low")
    assert broker.free_balance("USDT") == 10_000
    assert broker.cancel("kr-low", PAIR).status == "canceled"  # twice: reports how it ended
    with pytest.raises(ExchangeError, match="no order kr-never") as error:
        broker.fetch("kr-never", PAIR)
    assert not error.value.temporary


def test_a_stop_rests_moves_up_and_triggers(broker: CcxtBroker, standin: ExchangeStandin) -> None:
    standin.account.deposit("BTC", 0.01)
    stop = broker.place(sell("kr-stop-1", "stop", stop_price=61_000.0, price=60_695.0))
    assert (stop.status, stop.kind) == ("open", "stop")
    resting = standin.account.find("BTCUSDT", None, "kr-stop-1")
    assert (resting.type, float(resting.stop_price), float(resting.price)) == (
        "STOP_LOSS_LIMIT", 61_000.0, 60_695.0,
    )  # fmt: skip
    standin.clock.advance(QUARTER)
    assert broker.fetch("kr-stop-1", PAIR).status == "open"  # the low stayed above it
    open_, _, low, _ = candle(standin, "2024-03-01 00:15")
    trigger = round(low + (open_ - low) / 4, 2)  # the next candle goes below this
    moved = broker.replace_stop("kr-stop-1", PAIR, sell("kr-stop-2", "stop", stop_price=trigger))
    assert (moved.status, moved.client_id) == ("open", "kr-stop-2")
    assert moved.replaced is not None and moved.replaced.status == "canceled"
    assert [o.client_id for o in broker.open_orders()] == ["kr-stop-2"]
    standin.clock.advance(QUARTER)
    hit = broker.fetch("kr-stop-2", PAIR)
    assert (hit.status, hit.filled, hit.average) == ("closed", 0.01, trigger)
    assert broker.free_balance("USDT") == pytest.approx(10_000 + 0.01 * trigger * (1 - FEE))
    again = broker.replace_stop("kr-stop-2", PAIR, sell("kr-stop-3", "stop", stop_price=trigger))
    assert (again.client_id, again.status) == ("kr-stop-2", "closed")  # filled: nothing placed
    assert broker.open_orders() == []


def test_a_stop_without_a_limit_is_a_stop_market(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    standin.account.deposit("BTC", 0.01)
    broker.place(sell("kr-stop-m", "stop", stop_price=61_000.0))
    resting = standin.account.find("BTCUSDT", None, "kr-stop-m")
    assert (resting.type, float(resting.stop_price)) == ("STOP_LOSS", 61_000.0)


def test_a_stop_that_would_trigger_at_once_is_rejected(broker: CcxtBroker) -> None:
    state = broker.place(sell("kr-stop", "stop", stop_price=70_000.0))
    assert state.status == "rejected" and "would trigger immediately" in state.reason


def test_insufficient_balance_is_retried_once_for_one_percent_less(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    price = candle(standin, START)[0]
    amount = round(10_000 / price, 5)  # the whole balance: no room for the fee
    state = broker.place(buy("kr-all-in", amount=amount))
    assert state.status == "closed"
    assert state.filled == pytest.approx(amount * 0.99, abs=1e-5) and state.filled < amount
    posts = [r.status for r in standin.requests(ORDER) if r.method == "POST"]
    assert posts == [400, 200]


def test_a_rejection_is_a_state_with_the_exchanges_reason(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    hopeless = broker.place(buy("kr-big", amount=1.0))  # 1 BTC with 10 000 USDT
    assert hopeless.status == "rejected" and hopeless.done and hopeless.exchange_id == ""
    assert "Account has insufficient balance" in hopeless.reason
    assert hopeless.amount == pytest.approx(0.99)  # what the second try asked for
    tiny = broker.place(buy("kr-tiny", amount=0.00001))  # under the minimum notional
    assert tiny.status == "rejected" and "NOTIONAL" in tiny.reason
    standin.faults.reject_next(code=-2010, msg="Order would immediately match.", path=ORDER)
    injected = broker.place(buy("kr-x", "limit", price=60_000.0))
    assert (
        injected.status == "rejected"
        and injected.reason == "Order would immediately match. (code -2010)"
    )
    short = broker.place(OrderRequest("kr-short", PAIR, "short", True, "market", 0.01))
    assert short.status == "rejected" and "short" in short.reason
    posts = [r for r in standin.requests(ORDER) if r.method == "POST"]
    assert len(posts) == 4  # 2 for the balance, 1 each for the others, none for the short


def test_a_partial_fill_is_reported_as_filled_less_than_amount(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    open_, _, low, _ = candle(standin, START)
    limit = round((open_ + low) / 2, 2)
    broker.place(buy("kr-part", "limit", amount=0.02, price=limit))
    standin.account.partial_next(fraction=0.5)
    standin.clock.advance(QUARTER)
    part = broker.fetch("kr-part", PAIR)
    assert (part.status, part.amount, part.filled) == ("open", 0.02, 0.01)
    assert part.fee == pytest.approx(0.01 * limit * FEE)
    rest = broker.cancel("kr-part", PAIR)
    assert (rest.status, rest.filled) == ("canceled", 0.01)
    assert broker.free_balance("USDT") == pytest.approx(10_000 - 0.01 * limit * (1 + FEE))
    standin.account.partial_next(fraction=0.25)
    market = broker.place(buy("kr-thin", amount=0.02))
    assert (market.status, market.filled) == ("expired", 0.005)


def test_a_timed_out_placement_is_not_sent_twice(standin: ExchangeStandin) -> None:
    sim = SimTime()
    client = standin.ccxt_client(apiKey=API_KEY, secret=API_SECRET, timeout=300)
    broker = CcxtBroker(client, stake_currency="USDT", clock=sim.clock, sleep=sim.sleep)
    broker.free_balance("USDT")  # markets loaded: the next request is the order
    sent: list[str] = []
    send = client.session.request

    def counted(method: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(method)
        return send(method, *args, **kwargs)

    client.session.request = counted
    standin.faults.delay_next(1, seconds=1.0, path=ORDER)  # well past the 300 ms timeout
    state = broker.place(buy("kr-once", "limit", price=60_000.0))
    assert state.status == "open" and sim.backoffs() == [1.0]
    deadline = time.monotonic() + 30  # a guard against a hang, not a speed limit
    while len(standin.requests(ORDER)) < len(sent):  # the slow one lands late
        assert time.monotonic() < deadline, "the delayed request never finished"
        time.sleep(0.02)
    assert [o.client_id for o in standin.account.orders] == ["kr-once"]


def test_reconciliation_finds_ours_and_flags_the_rest(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    previous = standin.ccxt_client(apiKey=API_KEY, secret=API_SECRET)  # an earlier process
    for client_id, price in (
        ("kr-prev-1", 60_000.0),
        ("kr-lost-3", 59_000.0),
        ("manual-42", 58_000.0),
    ):
        previous.create_order(PAIR, "limit", "buy", 0.01, price, {"clientOrderId": client_id})
    unknown, missing = broker.reconcile(["kr-prev-1", "kr-gone-7"])
    assert sorted(o.client_id for o in unknown) == ["kr-lost-3", "manual-42"]
    assert [broker.owns(o.client_id) for o in sorted(unknown, key=lambda o: o.client_id)] == [
        True, False,
    ]  # fmt: skip
    assert missing == ["kr-gone-7"]
    adopted = broker.fetch("kr-prev-1", PAIR)
    assert (adopted.status, adopted.kind, adopted.amount) == ("open", "limit", 0.01)


def test_broker_from_env_needs_both_variables(standin: ExchangeStandin) -> None:
    with pytest.raises(ConfigError, match=r"^KINETIC_API_KEY and KINETIC_API_SECRET are not set"):
        broker_from_env("binance", stake_currency="USDT", environ={})
    with pytest.raises(ConfigError, match=r"^KINETIC_API_SECRET is not set"):
        broker_from_env("binance", stake_currency="USDT", environ={"KINETIC_API_KEY": "k"})
    env = {"KINETIC_API_KEY": API_KEY, "KINETIC_API_SECRET": API_SECRET}
    broker = broker_from_env(
        "binance", stake_currency="USDT", url_override=standin.url, environ=env
    )
    assert broker.free_balance("USDT") == 10_000
    assert API_KEY not in repr(broker) and API_SECRET not in repr(broker)


def test_orders_need_their_prices_and_a_sane_client_id(broker: CcxtBroker) -> None:
    bad: list[tuple[Any, str]] = [
        (buy("kr-a", "limit"), "no price"),
        (sell("kr-b", "stop"), "no stop_price"),
        (buy("not a valid id!"), "client id"),
    ]
    for request, message in bad:
        with pytest.raises(ValueError, match=message):
            broker.place(request)
    with pytest.raises(ExchangeError, match="not a market"):
        broker.place(OrderRequest("kr-c", "DOGE/USDT", "long", True, "market", 1.0))
