"""PaperBroker fills orders on the live book and tickers that the real ccxt client reads
from the exchange stand-in; prices move with the stand-in's clock over recorded candles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.engine.fills import FillModel, entry_fill
from kinetic_rules.engine.orders import OrderKind
from kinetic_rules.errors import ExchangeError
from kinetic_rules.live.broker import OrderRequest
from kinetic_rules.live.paper_broker import PaperBroker
from tests.standin import ExchangeStandin
from tests.standin.market import to_ms
from tests.standin.simtime import SimTime

PAIR, SYMBOL = "BTC/USDT", "BTCUSDT"
START = "2024-03-01 00:00"
QUARTER = 15 * 60_000
FILLS = FillModel(
    fee=0.001, slippage=0.0005, entry_limit=True, exit_limit=True, entry_timeout=2, exit_timeout=2
)


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=(PAIR, "ETH/USDT"), timeframes=("15m",)) as exchange:
        exchange.clock.set(START)
        yield exchange


def make_broker(standin: ExchangeStandin, **settings: Any) -> PaperBroker:
    settings.setdefault("sleep", SimTime().sleep)
    return PaperBroker(
        standin.ccxt_client(),
        fills=settings.pop("fills", FILLS),
        stake_currency="USDT",
        balance=settings.pop("balance", 10_000.0),
        clock=lambda: pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC"),
        rate_limit_ms=0,
        **settings,
    )


@pytest.fixture
def broker(standin: ExchangeStandin) -> PaperBroker:
    return make_broker(standin)


def order(
    client_id: str, kind: OrderKind = "market", amount: float = 0.01, *, opening: bool = True,
    pair: str = PAIR, **prices: float,
) -> OrderRequest:  # fmt: skip
    return OrderRequest(client_id, pair, "long", opening, kind, amount, **prices)


def closes_from(standin: ExchangeStandin, at: str, count: int) -> list[float]:
    """Recorded 15m closes from the candle opening at `at`: the last price, quarter by quarter."""
    series = standin.market.series[(SYMBOL, "15m")]
    first = list(series.open_times).index(to_ms(at))
    return [float(str(row[4])) for row in series.rows[first : first + count]]


def first_new_low(closes: list[float]) -> int:
    """The first quarter whose close is below every close before it."""
    return next(i for i in range(1, len(closes)) if closes[i] < min(closes[:i]))


def test_a_market_buy_walks_the_book_and_pays_the_models_slippage(
    broker: PaperBroker, standin: ExchangeStandin
) -> None:
    asks = [(61_000.00, 0.004), (61_000.50, 0.003), (61_002.00, 0.010)]
    standin.market.set_book(SYMBOL, bids=[(60_999.0, 1.0)], asks=asks)
    bought = broker.place(order("kr-1"))
    walked = (0.004 * 61_000.00 + 0.003 * 61_000.50 + 0.003 * 61_002.00) / 0.01
    price = walked * (1 + FILLS.slippage)
    assert (bought.status, bought.kind, bought.filled) == ("closed", "market", 0.01)
    assert bought.average == pytest.approx(price, rel=1e-12)
    assert bought.fee == pytest.approx(0.01 * price * FILLS.fee, rel=1e-12)
    assert broker.free_balance("BTC") == pytest.approx(0.01)
    assert broker.free_balance("USDT") == pytest.approx(10_000 - 0.01 * price * (1 + FILLS.fee))
    # the same look: the coins this order took are gone, the next buy starts deeper
    again = broker.place(order("kr-2", amount=0.005))
    assert again.average == pytest.approx(61_002.00 * (1 + FILLS.slippage), rel=1e-12)
    standin.clock.advance(1_000)  # a new look: the book is whole again
    fresh = broker.place(order("kr-3", amount=0.004))
    assert fresh.average == pytest.approx(61_000.00 * (1 + FILLS.slippage), rel=1e-12)
    assert not standin.requests("/api/v3/order")  # nothing ever reaches the exchange


def test_a_market_order_bigger_than_the_book_fills_what_is_there_and_expires(
    standin: ExchangeStandin,
) -> None:
    broker = make_broker(standin, assets={"BTC": 0.05})
    standin.market.set_book(SYMBOL, bids=[(60_990.0, 0.02)], asks=[(61_000.0, 0.02)])
    too_many = broker.place(order("kr-out", amount=0.06, opening=False))
    assert too_many.status == "rejected" and "insufficient balance" in too_many.reason
    sold = broker.place(order("kr-out", amount=0.05, opening=False))
    price = 60_990.0 * (1 - FILLS.slippage)
    assert (sold.status, sold.filled, sold.average) == ("expired", 0.02, pytest.approx(price))
    assert broker.account.balances()["BTC"] == pytest.approx((0.03, 0.0))  # the rest is free
    assert broker.free_balance("USDT") == pytest.approx(10_000 + 0.02 * price * (1 - FILLS.fee))


def test_a_limit_rests_until_the_ask_reaches_it_then_fills_at_its_price(
    broker: PaperBroker, standin: ExchangeStandin
) -> None:
    closes = closes_from(standin, START, 24)
    hit = first_new_low(closes)
    limit = round((min(closes[:hit]) + closes[hit]) / 2, 2)
    placed = broker.place(order("kr-entry", "limit", price=limit))
    held = 0.01 * limit * (1 + FILLS.fee)
    assert (placed.status, placed.filled) == ("open", 0.0)
    assert broker.account.balances()["USDT"] == pytest.approx((10_000 - held, held))
    for _ in range(1, hit):  # the ask stays above the limit: nothing fills
        standin.clock.advance(QUARTER)
        assert broker.fetch("kr-entry", PAIR).status == "open"
    standin.clock.advance(QUARTER)
    filled = broker.fetch("kr-entry", PAIR)
    assert (filled.status, filled.filled, filled.average) == ("closed", 0.01, limit)
    assert filled.fee == pytest.approx(0.01 * limit * FILLS.fee)  # a limit pays no slippage
    assert filled.updated == pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")
    assert broker.account.balances()["USDT"] == pytest.approx((10_000 - held, 0.0))
    assert broker.free_balance("BTC") == 0.01
    assert broker.open_orders() == []


def test_a_limit_meeting_the_book_takes_the_touch_and_rests_for_the_rest(
    broker: PaperBroker, standin: ExchangeStandin
) -> None:
    standin.market.set_book(
        SYMBOL, bids=[(60_999.0, 1.0)], asks=[(61_000.0, 0.004), (61_001.0, 1.0)]
    )
    placed = broker.place(order("kr-part", "limit", price=61_000.5))
    assert (placed.status, placed.filled, placed.average) == ("open", 0.004, 61_000.0)
    assert placed.fee == pytest.approx(0.004 * 61_000.0 * FILLS.fee)
    standin.clock.advance(1_000)  # a new look: 0.004 more at or under the limit, now resting
    second = broker.fetch("kr-part", PAIR)  # so filled at the limit, its own price
    assert second.filled == pytest.approx(0.008)
    assert second.average == pytest.approx((61_000.0 + 61_000.5) / 2, rel=1e-12)
    standin.market.set_book(SYMBOL, bids=[(60_950.0, 1.0)], asks=[(60_960.0, 0.5)])
    standin.clock.advance(1_000)  # the market falls through the limit: the rest fills at it
    done = broker.fetch("kr-part", PAIR)
    average = (0.004 * 61_000.0 + 0.006 * 61_000.5) / 0.01
    assert (done.status, done.filled) == ("closed", 0.01)
    assert done.average == pytest.approx(average, rel=1e-12)
    assert done.fee == pytest.approx(0.01 * average * FILLS.fee, rel=1e-9)
    assert broker.free_balance("USDT") == pytest.approx(10_000 - 0.01 * average * (1 + FILLS.fee))


def test_a_stop_triggers_when_the_last_price_reaches_it_then_sells_at_market(
    standin: ExchangeStandin,
) -> None:
    broker = make_broker(standin, assets={"BTC": 0.01})
    closes = closes_from(standin, START, 24)
    hit = first_new_low(closes)
    stop = round((min(closes[:hit]) + closes[hit]) / 2, 2)
    too_high = broker.place(order("kr-stop-0", "stop", opening=False, stop_price=closes[0] + 50))
    assert too_high.status == "rejected" and "would trigger immediately" in too_high.reason
    placed = broker.place(order("kr-stop-1", "stop", opening=False, stop_price=stop))
    assert (placed.status, placed.kind) == ("open", "stop")
    assert broker.account.balances()["BTC"] == (0.0, 0.01)  # the coins are held
    for _ in range(1, hit):
        standin.clock.advance(QUARTER)
        assert broker.poll() == []  # the last price stays above the stop
    standin.clock.advance(QUARTER)
    (changed,) = broker.poll()
    bid = closes[hit]  # the stand-in's book: the best bid is the last price
    price = bid * (1 - FILLS.slippage)
    assert (changed.client_id, changed.status, changed.filled) == ("kr-stop-1", "closed", 0.01)
    assert changed.average == pytest.approx(price) and changed.raw["triggered"] is True
    assert broker.free_balance("USDT") == pytest.approx(10_000 + 0.01 * price * (1 - FILLS.fee))
    assert broker.account.balances()["BTC"] == (0.0, 0.0)


def test_moving_a_stop_cancels_the_old_one_and_never_holds_the_coins_twice(
    standin: ExchangeStandin,
) -> None:
    broker = make_broker(standin, assets={"BTC": 0.01})
    closes = closes_from(standin, START, 24)
    hit = first_new_low(closes)
    stop = round((min(closes[:hit]) + closes[hit]) / 2, 2)
    broker.place(order("kr-stop-1", "stop", opening=False, stop_price=stop - 500))
    moved = broker.replace_stop(
        "kr-stop-1", PAIR, order("kr-stop-2", "stop", opening=False, stop_price=stop)
    )
    assert (moved.client_id, moved.status) == ("kr-stop-2", "open")
    assert moved.replaced is not None and moved.replaced.status == "canceled"
    assert broker.account.balances()["BTC"] == (0.0, 0.01)
    assert [o.client_id for o in broker.open_orders(PAIR)] == ["kr-stop-2"]
    standin.clock.advance(hit * QUARTER)  # the last price falls through the stop
    bid = stop - 10.0
    standin.market.set_book(SYMBOL, bids=[(bid, 1.0)], asks=[(bid + 0.01, 1.0)])
    again = broker.replace_stop(
        "kr-stop-2", PAIR, order("kr-stop-3", "stop", opening=False, stop_price=stop + 50)
    )
    assert (again.client_id, again.status, again.average) == (
        "kr-stop-2", "closed", pytest.approx(bid * (1 - FILLS.slippage)),
    )  # fmt: skip
    assert broker.open_orders() == []  # filled: nothing was placed in its stead
    assert broker.account.balances()["BTC"] == (0.0, 0.0)


def test_refusals_are_rejected_states_in_the_exchanges_words(
    broker: PaperBroker, standin: ExchangeStandin
) -> None:
    standin.market.set_book(SYMBOL, bids=[(61_000.0, 50.0)], asks=[(61_000.0, 50.0)])
    price = 61_000.0 * (1 + FILLS.slippage)
    hopeless = broker.place(order("kr-big", amount=1.0))  # 1 BTC with 10 000 USDT
    assert hopeless.status == "rejected" and hopeless.done and hopeless.exchange_id == ""
    assert "Account has insufficient balance" in hopeless.reason
    assert hopeless.amount == pytest.approx(0.99)  # what the second try asked for
    all_in = round(10_000 / price, 5)  # the whole balance: no room for the fee
    state = broker.place(order("kr-all-in", amount=all_in))
    assert state.status == "closed" and state.filled == pytest.approx(all_in * 0.99, abs=1e-5)
    assert broker.free_balance("USDT") >= 0
    tiny = broker.place(order("kr-tiny", amount=0.00005))  # 3 USDT: under the 5 USDT minimum
    assert tiny.status == "rejected" and "NOTIONAL" in tiny.reason
    dust = broker.place(order("kr-dust", amount=0.000001))  # under the amount's precision
    assert dust.status == "rejected" and "precision" in dust.reason
    short = broker.place(OrderRequest("kr-short", PAIR, "short", True, "market", 0.01))
    assert short.status == "rejected" and "short" in short.reason
    standin.market.list_symbol("LUNA", "USDT", last=0.5, quote_volume=0.0, status="BREAK")
    closed = make_broker(standin).place(order("kr-luna", amount=100.0, pair="LUNA/USDT"))
    assert closed.status == "rejected" and closed.reason == "Market is closed."
    with pytest.raises(ExchangeError, match="not a market") as error:
        broker.place(order("kr-doge", pair="DOGE/USDT"))
    assert not error.value.temporary
    with pytest.raises(ValueError, match="no price"):
        broker.place(order("kr-a", "limit"))
    with pytest.raises(ValueError, match="client id"):
        broker.place(order("not a valid id!"))
    with pytest.raises(ExchangeError, match="no order kr-big") as error:
        broker.fetch("kr-big", PAIR)  # a rejected order does not exist
    assert not error.value.temporary


def test_orders_are_found_canceled_and_listed_as_the_ccxt_broker_reports_them(
    broker: PaperBroker, standin: ExchangeStandin
) -> None:
    first = broker.place(order("kr-low", "limit", price=50_000.0))
    same = broker.place(order("kr-low", "limit", price=50_000.0))  # sent twice: one order
    assert same.exchange_id == first.exchange_id
    broker.place(order("kr-eth", "limit", amount=0.1, price=2_000.0, pair="ETH/USDT"))
    assert [o.client_id for o in broker.open_orders()] == ["kr-low", "kr-eth"]
    assert [o.client_id for o in broker.open_orders("ETH/USDT")] == ["kr-eth"]
    canceled = broker.cancel("kr-low", PAIR)
    assert (canceled.status, canceled.filled) == ("canceled", 0.0)
    assert broker.cancel("kr-low", PAIR).status == "canceled"  # twice: how it ended
    assert broker.free_balance("USDT") == pytest.approx(10_000 - 0.1 * 2_000 * (1 + FILLS.fee))
    reused = broker.place(order("kr-low", "limit", price=50_000.0))  # its order has ended
    assert reused.exchange_id != first.exchange_id and reused.status == "open"
    with pytest.raises(ExchangeError, match="no order kr-low on ETH/USDT"):
        broker.fetch("kr-low", "ETH/USDT")
    with pytest.raises(ExchangeError, match="no order kr-never"):
        broker.cancel("kr-never", PAIR)


def test_fills_equal_the_backtest_fill_model_in_the_same_situation(
    standin: ExchangeStandin,
) -> None:
    """Entries as the backtest decides them at the next candle, and as the book fills them."""
    signal_close, opens, lows = 61_000.0, 61_050.0, 60_900.0
    prices = {
        "open": np.array([60_800.0, opens]),
        "high": np.array([61_100.0, 61_200.0]),
        "low": np.array([60_700.0, lows]),
        "close": np.array([signal_close, 61_150.0]),
    }
    for entry_limit in (False, True):
        model = FillModel(0.001, 0.0005, entry_limit, True, 1, 1)
        outcome = entry_fill(model, prices, 0, "long")
        assert outcome[0] == "filled"
        backtest_price = outcome[2]
        broker = make_broker(standin, fills=model)
        standin.market.set_book(SYMBOL, bids=[(opens - 0.01, 5.0)], asks=[(opens, 5.0)])
        kind: OrderKind = "limit" if entry_limit else "market"
        limits = {"price": signal_close} if entry_limit else {}
        placed = broker.place(order(f"kr-{kind}", kind, **limits))
        standin.market.set_book(SYMBOL, bids=[(lows - 0.01, 5.0)], asks=[(lows, 5.0)])
        standin.clock.advance(1_000)  # the candle's low: the market trades through the limit
        paper = broker.fetch(placed.client_id, PAIR)
        assert paper.status == "closed"
        assert paper.average == pytest.approx(backtest_price, rel=1e-12)
        assert paper.fee == pytest.approx(model.fee_on(backtest_price, 0.01), rel=1e-12)
    # a stop: the backtest fills a long's stop at its price less slippage; so does the book
    broker = make_broker(standin, assets={"BTC": 0.01})
    last = closes_from(standin, "2024-03-01 00:00", 1)[0]
    stop = round(last - 300, 2)
    broker.place(order("kr-stop", "stop", opening=False, stop_price=stop))
    series = standin.market.series[(SYMBOL, "15m")]
    below = next(i for i, row in enumerate(series.rows) if float(str(row[4])) <= stop and
                 series.open_times[i] > standin.clock.now())  # fmt: skip
    standin.clock.set(int(series.open_times[below]))
    standin.market.set_book(SYMBOL, bids=[(stop, 5.0)], asks=[(stop + 0.01, 5.0)])
    stopped = broker.fetch("kr-stop", PAIR)
    assert stopped.average == pytest.approx(FILLS.adverse(stop, "long", buying=False), rel=1e-12)


def test_an_outage_is_a_temporary_error_and_a_long_one_turns_the_fail_safe_on(
    standin: ExchangeStandin,
) -> None:
    def sleep(seconds: float) -> None:  # backoff passes on the stand-in's clock
        standin.clock.advance(int(seconds * 1000))

    changes: list[bool] = []
    broker = make_broker(
        standin, sleep=sleep, on_fail_safe=lambda active, message: changes.append(active)
    )
    broker.place(order("kr-rest", "limit", price=50_000.0))
    standin.faults.fail_next(100, path="/api/v3/depth")
    for _ in range(4):  # each call retries for 1+2+4+8+16+30+30 s before it gives up
        standin.clock.advance(1_000)
        with pytest.raises(ExchangeError, match="gave up after 8 attempts") as error:
            broker.fetch("kr-rest", PAIR)
        assert error.value.temporary
    assert broker.fail_safe and changes == [True]  # down for more than five minutes
    standin.faults.clear()
    assert broker.fetch("kr-rest", PAIR).status == "open"
    assert not broker.fail_safe and changes == [True, False]


def test_a_restarted_broker_resumes_the_account_and_its_resting_orders(
    standin: ExchangeStandin, tmp_path: Any
) -> None:
    from kinetic_rules.persist import TradeStore

    journal = TradeStore(f"sqlite:///{tmp_path / 'trades.sqlite'}")
    standin.market.set_book(SYMBOL, bids=[(60_990.0, 1.0)], asks=[(61_000.0, 1.0)])
    first = make_broker(standin, journal=journal)
    bought = first.place(order("kr-in"))
    resting = first.place(order("kr-out", "limit", opening=False, price=62_000.0))
    before = first.account.balances()
    del first  # the process dies
    second = make_broker(standin, journal=journal, balance=1.0)  # the saved account wins
    assert second.account.balances() == before
    assert second.fetch("kr-in", PAIR) == bought
    assert [o.client_id for o in second.open_orders()] == ["kr-out"]
    other = second.place(order("kr-low", "limit", price=50_000.0))
    assert other.exchange_id not in (bought.exchange_id, resting.exchange_id)
    standin.market.set_book(SYMBOL, bids=[(62_010.0, 1.0)], asks=[(62_011.0, 1.0)])
    standin.clock.advance(1_000)
    sold = second.fetch("kr-out", PAIR)
    assert (sold.status, sold.average) == ("closed", 62_000.0)
    third = make_broker(standin, journal=journal)
    assert third.fetch("kr-out", PAIR).status == "closed"
    assert third.free_balance("BTC") == pytest.approx(0.0)
