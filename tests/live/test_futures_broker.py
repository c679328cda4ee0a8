"""CcxtBroker on a futures account: the real ccxt `binanceusdm` client against the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pandas as pd
import pytest

from kinetic_rules.engine.orders import OrderKind
from kinetic_rules.errors import ConfigError
from kinetic_rules.live.broker import OrderRequest, Side
from kinetic_rules.live.ccxt_broker import CcxtBroker
from kinetic_rules.live.futures import BinanceUsdm, FuturesSettings
from kinetic_rules.margin import liquidation_price
from tests.standin import ExchangeStandin
from tests.standin.account import API_KEY, API_SECRET
from tests.standin.market import to_ms
from tests.standin.simtime import SimTime

PAIR = "BTC/USDT"
SYMBOL = "BTCUSDT"
START = "2024-03-01 00:00"
QUARTER = 15 * 60_000


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=(PAIR, "ETH/USDT"), timeframes=("15m",)) as exchange:
        exchange.clock.set(START)
        exchange.futures.deposit(1_000)
        yield exchange


def make_broker(standin: ExchangeStandin, **settings: str) -> CcxtBroker:
    sim = SimTime()
    client = standin.ccxt_futures_client(apiKey=API_KEY, secret=API_SECRET)
    venue = (BinanceUsdm(), FuturesSettings(**settings))  # type: ignore[arg-type]
    return CcxtBroker(
        client, stake_currency="USDT", clock=sim.clock, sleep=sim.sleep, futures=venue
    )


@pytest.fixture
def broker(standin: ExchangeStandin) -> CcxtBroker:
    return make_broker(standin)


def candle(standin: ExchangeStandin, at: str) -> tuple[float, ...]:
    series = standin.market.series[(SYMBOL, "15m")]
    row = series.rows[list(series.open_times).index(to_ms(at))]
    return tuple(float(str(v)) for v in row[1:5])


def order(
    client_id: str,
    side: Side,
    opening: bool,
    amount: float,
    kind: OrderKind = "market",
    **more: float,
) -> OrderRequest:
    return OrderRequest(client_id, PAIR, side, opening, kind, amount, **more)  # type: ignore[arg-type]


def sent(standin: ExchangeStandin, path: str) -> list[dict[str, str]]:
    return [r.params for r in standin.requests(path) if r.method == "POST"]


def test_a_long_and_a_short_open_with_leverage_and_isolated_margin_set_first(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    price = candle(standin, START)[0]
    long = broker.place(order("kr-1", "long", True, 0.01, leverage=5))
    assert (long.status, long.filled, long.average) == ("closed", 0.01, price)
    assert long.fee == pytest.approx(0.01 * price * 0.0004)
    assert standin.futures.leverage[SYMBOL] == 5
    assert standin.futures.margin_type[SYMBOL] == "ISOLATED"
    paths = [r.path for r in standin.requests() if r.method == "POST"]
    assert paths[:3] == ["/fapi/v1/marginType", "/fapi/v1/leverage", "/fapi/v1/order"]
    eth = OrderRequest("kr-2", "ETH/USDT", "short", True, "market", 0.1, leverage=3.4)
    assert broker.place(eth).filled == 0.1
    positions = {p.pair: p for p in broker.positions() or []}
    btc, short = positions[PAIR], positions["ETH/USDT"]
    assert (btc.side, btc.amount, btc.leverage, btc.margin_mode) == ("long", 0.01, 5, "isolated")
    assert btc.liquidation_price == pytest.approx(liquidation_price(price, 5, 0.005, 1.0), abs=0.01)
    assert (short.side, short.amount, short.leverage) == ("short", 0.1, 3)  # whole leverages
    assert standin.futures.position("ETHUSDT").amount == Decimal("-0.1")


def test_a_short_stands_on_its_own(broker: CcxtBroker, standin: ExchangeStandin) -> None:
    state = broker.place(order("kr-1", "short", True, 0.02, leverage=2))
    assert state.status == "closed"
    (position,) = broker.positions() or []
    assert (position.side, position.amount, position.leverage) == ("short", 0.02, 2)
    back = broker.place(order("kr-2", "short", False, 0.02))  # buys back, reduce-only
    assert back.filled == 0.02 and sent(standin, "/fapi/v1/order")[-1]["reduceOnly"] == "true"
    assert broker.positions() == []


def test_the_stop_rests_reduce_only_and_triggers_on_the_mark_price(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    o, _, low, _ = candle(standin, START)
    broker.place(order("kr-1", "long", True, 0.01, leverage=10))
    stop = round(o * 0.995, 2)
    assert low > stop  # the trade price never reaches the stop in this candle: the mark will
    resting = broker.place(order("kr-2", "long", False, 0.01, "stop", stop_price=stop))
    assert (resting.status, resting.kind) == ("open", "stop")
    (params,) = sent(standin, "/fapi/v1/algoOrder")
    assert (params["type"], params["workingType"], params["reduceOnly"]) == (
        "STOP_MARKET", "MARK_PRICE", "true",
    )  # fmt: skip
    assert [s.client_id for s in broker.open_orders(PAIR)] == ["kr-2"]
    standin.futures.set_mark_ratio(SYMBOL, "0.99")  # the mark falls 1% below the trades
    standin.clock.advance(QUARTER)
    done = broker.fetch("kr-2", PAIR)
    assert (done.status, done.filled) == ("closed", 0.01)
    assert done.average == pytest.approx(min(o, stop / 0.99), abs=0.01) and done.fee > 0
    assert broker.positions() == []


def test_a_contract_price_stop_ignores_the_mark(standin: ExchangeStandin) -> None:
    broker = make_broker(standin, stop_trigger="contract")
    o = candle(standin, START)[0]
    broker.place(order("kr-1", "long", True, 0.01, leverage=10))
    broker.place(order("kr-2", "long", False, 0.01, "stop", stop_price=round(o * 0.995, 2)))
    assert sent(standin, "/fapi/v1/algoOrder")[0]["workingType"] == "CONTRACT_PRICE"
    standin.futures.set_mark_ratio(SYMBOL, "0.99")
    standin.clock.advance(QUARTER)
    assert broker.fetch("kr-2", PAIR).status == "open"
    moved = broker.replace_stop("kr-2", PAIR, order("kr-3", "long", False, 0.01, "stop",
                                                    stop_price=round(o * 0.98, 2)))  # fmt: skip
    assert moved.status == "open" and moved.replaced is not None
    assert moved.replaced.status == "canceled"
    assert [s.client_id for s in broker.open_orders()] == ["kr-3"]


def test_take_profits_reduce_the_position_in_steps_and_never_open_the_other_side(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    broker.place(order("kr-1", "long", True, 0.03, leverage=4))
    for step, client_id in enumerate(("kr-2", "kr-3", "kr-4")):
        taken = broker.place(order(client_id, "long", False, 0.01))
        assert taken.filled == 0.01
        left = standin.futures.position(SYMBOL).amount
        assert left == Decimal("0.03") - Decimal("0.01") * (step + 1)
    late = broker.place(order("kr-5", "long", False, 0.01))  # nothing left to take
    assert late.status == "rejected" and "ReduceOnly" in late.reason
    assert standin.futures.position(SYMBOL).amount == 0


def test_insufficient_margin_halves_the_size_and_tries_once_more(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    price = candle(standin, START)[0]
    too_big = round(1.5 * 1_000 * 2 / price, 3)  # needs 1.5× the wallet at 2×; half fits
    state = broker.place(order("kr-1", "long", True, too_big, leverage=2))
    assert state.status == "closed"
    assert state.filled == pytest.approx(too_big / 2, abs=1e-5)
    quantities = [p["quantity"] for p in sent(standin, "/fapi/v1/order")]
    assert len(quantities) == 2 and float(quantities[1]) == pytest.approx(too_big / 2, abs=1e-5)
    refused = broker.place(order("kr-2", "long", True, too_big * 4, leverage=2))
    assert refused.status == "rejected" and "insufficient" in refused.reason.lower()
    assert len(sent(standin, "/fapi/v1/order")) == 4  # once more, then no further


def test_an_isolated_position_is_liquidated_at_the_mark_price(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    o = candle(standin, START)[0]
    broker.place(order("kr-1", "long", True, 0.01, leverage=20))
    broker.place(order("kr-2", "long", False, 0.01, "stop", stop_price=round(o * 0.5, 2)))
    margin = standin.futures.position(SYMBOL).margin
    (position,) = broker.positions() or []
    assert position.liquidation_price is not None and position.liquidation_price > o * 0.95
    entered = pd.Timestamp(to_ms(START), unit="ms", tz="UTC")
    assert broker.liquidation(PAIR, entered) is None
    standin.futures.set_mark_ratio(SYMBOL, "0.94")  # the mark falls past the liquidation
    standin.clock.advance(QUARTER)
    assert broker.positions() == []
    assert broker.fetch("kr-2", PAIR).status == "canceled"  # the exchange cancels its orders
    booked = [i for i in standin.futures.income() if i.trade_id != "" or i.kind != "FUNDING_FEE"]
    liquidated = [i for i in booked if i.time > to_ms(START)]
    assert {i.kind for i in liquidated} == {"REALIZED_PNL", "COMMISSION", "INSURANCE_CLEAR"}
    assert sum(i.amount for i in liquidated) == -margin  # the whole margin, no more
    assert broker.total_balance("USDT") == pytest.approx(
        1_000 - float(margin) - 0.01 * o * 0.0004, abs=1e-6
    )
    found = broker.liquidation(PAIR, entered)
    assert found is not None
    (force,) = [o for o in standin.futures.orders if o.client_id.startswith("autoclose-")]
    assert (found.price, found.amount) == (float(force.average), 0.01)
    assert found.price == pytest.approx(position.liquidation_price / 0.94, abs=0.01)
    assert found.lost == pytest.approx(float(margin))
    assert found.time == pd.Timestamp(force.update_time, unit="ms", tz="UTC")
    assert standin.requests("/fapi/v1/forceOrders")
    later = pd.Timestamp(force.update_time + 1, unit="ms", tz="UTC")
    assert broker.liquidation(PAIR, later) is None  # only since the time asked
    assert broker.liquidation("ETH/USDT", entered) is None


def test_without_the_force_orders_endpoint_the_order_history_tells_the_liquidation(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    broker.place(order("kr-1", "short", True, 0.01, leverage=20))
    margin = standin.futures.position(SYMBOL).margin
    standin.futures.set_mark_ratio(SYMBOL, "1.06")  # the mark rises past the liquidation
    standin.clock.advance(QUARTER)
    broker.exchange.has["fetchMyLiquidations"] = False
    found = broker.liquidation(PAIR, pd.Timestamp(to_ms(START), unit="ms", tz="UTC"))
    assert not standin.requests("/fapi/v1/forceOrders") and standin.requests("/fapi/v1/allOrders")
    (force,) = [o for o in standin.futures.orders if o.client_id.startswith("autoclose-")]
    assert found is not None and (found.amount, found.price) == (0.01, float(force.average))
    assert found.lost == pytest.approx(float(margin))


def test_an_account_in_hedge_mode_is_refused_with_a_clear_message(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    broker.check_account()  # one-way mode: fine
    standin.futures.dual_side = True
    with pytest.raises(ConfigError, match=r"hedge mode.*one-way"):
        broker.check_account()


def test_after_a_restart_a_fresh_broker_finds_and_cancels_a_resting_stop(
    broker: CcxtBroker, standin: ExchangeStandin
) -> None:
    o = candle(standin, START)[0]
    broker.place(order("kr-1", "short", True, 0.01, leverage=5))
    broker.place(order("kr-2", "short", False, 0.01, "stop", stop_price=round(o * 1.02, 2)))
    fresh = make_broker(standin)  # knows nothing of what kind each order was
    assert fresh.fetch("kr-2", PAIR).kind == "stop"
    assert fresh.fetch("kr-1", PAIR).filled == 0.01
    assert make_broker(standin).cancel("kr-2", PAIR).status == "canceled"
    assert make_broker(standin).find("kr-9", PAIR) is None
