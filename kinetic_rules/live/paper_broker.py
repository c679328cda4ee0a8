"""Paper trading's broker: the Broker protocol on live tickers and order books, no keys.

Orders never leave the process. Their fills follow the backtest's fill model moved
onto the order book (see paper_fills.py and docs/live.md, "Paper fills"): its fee on
every fill, its slippage on market and stop fills, limits at their price. The account
is simulated: a balance in the stake currency and in each base asset bought, with
funds held while an order rests, as the exchange holds them.

Orders are checked whenever the broker is called: every method first looks at the
market of the pairs concerned (`fetch` and `cancel` one pair, `open_orders` and
`free_balance` every pair with a resting order) and fills what the market reached.
`poll()` does the same on its own. A pair's market is fetched at most once every
`look_interval` seconds; calls in between reuse that look, less the depth our own
fills took from it.

Market data comes from a ccxt client's public endpoints (fetch_ticker,
fetch_order_book), paced, retried and watched by the fail-safe exactly as the
CcxtBroker's requests are; refusals come back as "rejected" states in the same words.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ccxt
import pandas as pd

from kinetic_rules.data.exchange import RetryPolicy, call_with_retry
from kinetic_rules.engine.fills import FillModel
from kinetic_rules.engine.orders import OrderState
from kinetic_rules.errors import ExchangeError
from kinetic_rules.live.broker import (
    INSUFFICIENT_CUT,
    ExchangeLiquidation,
    ExchangePosition,
    OrderRequest,
    Refused,
    rejected,
    replace_stop,
    submit_or_reject,
)
from kinetic_rules.live.ccxt_broker import CLIENT_ID, NEUTRAL
from kinetic_rules.live.paper_account import FillRule, PaperAccount, PaperOrder
from kinetic_rules.live.paper_fills import (
    EPSILON,
    Level,
    limit_on_arrival,
    limit_resting,
    market_fill,
    stop_triggered,
)
from kinetic_rules.live.robust import (
    FailSafe,
    Pacer,
    exchange_reason,
    live_retry,
    market_rules,
    outage_text,
    tradable_amount,
)
from kinetic_rules.live.session import Journal
from kinetic_rules.market_rules import MarketRules

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], pd.Timestamp]

WOULD_TRIGGER = "Stop price would trigger immediately."
MARKET_CLOSED = "Market is closed."


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


@dataclass
class _Look:
    """What was last seen of one pair's market, and when."""

    last: float | None = None
    last_at: pd.Timestamp | None = None
    bids: list[Level] = field(default_factory=list)
    asks: list[Level] = field(default_factory=list)
    book_at: pd.Timestamp | None = None


class PaperBroker:
    """A simulated spot account on an exchange's live market data.

    `balance` is the starting amount of `stake_currency`; `assets` may add base assets
    held from the start. `fills` is the strategy's fill model (engine.fills.fill_model):
    its fee and slippage are the ones charged here. `book_depth` levels of each side of
    the book are fetched; what lies beyond them is not there for the paper broker.
    With a `journal` (the trade store), the account is saved under `journal_key` after
    every change and restored from it on the next start, `balance` then being ignored.
    """

    def __init__(
        self,
        exchange: Any,
        *,
        fills: FillModel,
        stake_currency: str,
        balance: float,
        assets: Mapping[str, float] | None = None,
        clock: Clock = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
        rate_limit_ms: int = 200,
        fail_safe_after: float = 300.0,
        on_fail_safe: Callable[[bool, str], None] | None = None,
        book_depth: int = 100,
        look_interval: float = 1.0,
        journal: Journal | None = None,
        journal_key: str = "paper-broker",
    ) -> None:
        self.exchange = exchange
        self.fills = fills
        self.stake_currency = stake_currency
        self.book_depth = book_depth
        self.look_interval = look_interval
        self._clock = clock
        self._retry = dataclasses.replace(retry or live_retry(), sleep=sleep)
        seconds = self._seconds
        self._pacer = Pacer(rate_limit_ms / 1000, clock=seconds, sleep=sleep)
        self._fail_safe = FailSafe(
            f"exchange {exchange.id}", clock=seconds, after=fail_safe_after, on_change=on_fail_safe
        )
        self._journal, self._journal_key = journal, journal_key
        saved = journal.state(journal_key) if journal is not None else None
        if saved:  # a restart: the account as it was, resting orders included
            self.account: PaperAccount = self._restored(saved)
            log.info("paper account restored from %s", journal_key)
        else:
            self.account = self._opened(float(balance), assets or {})
        self._looks: dict[str, _Look] = {}
        numbers = [int(o.exchange_id.rsplit("-", 1)[-1]) for o in self.account.orders]
        self._ids = itertools.count(max(numbers, default=0) + 1)
        self._lock = threading.RLock()

    def _opened(self, balance: float, assets: Mapping[str, float]) -> PaperAccount:
        """A new account: the stake currency's balance and any base assets held."""
        start = {asset: float(amount) for asset, amount in assets.items()}
        start[self.stake_currency] = start.get(self.stake_currency, 0.0) + balance
        return PaperAccount(start, self.fills.fee)

    def _restored(self, saved: str) -> PaperAccount:
        return PaperAccount.load(saved, self.fills.fee)

    def __repr__(self) -> str:
        return f"PaperBroker({self.exchange.id!r}, stake_currency={self.stake_currency!r})"

    @property
    def fail_safe(self) -> bool:
        """True while the exchange has been unreachable for more than `fail_safe_after`."""
        return self._fail_safe.active

    # -- the Broker protocol -------------------------------------------------------------

    def free_balance(self, currency: str) -> float:
        with self._lock:
            self.poll()
            return self.account.free(currency)

    def total_balance(self, currency: str) -> float:
        with self._lock:
            self.poll()
            return sum(self.account.balances().get(currency, (0.0, 0.0)))

    def place(self, order: OrderRequest) -> OrderState:
        """Fill or rest an order; a refusal comes back as status "rejected" with the reason.

        As with the CcxtBroker, "insufficient balance" is tried once more for 1% less,
        and the client id of an order still open returns that order, not a second one.
        """
        if not CLIENT_ID.match(order.client_id):
            raise ValueError(f"client id {order.client_id!r}: 1-36 of A-Z a-z 0-9 _ - expected")
        market = self._market(order.pair)
        with self._lock:
            existing = self.account.find(order.client_id, order.pair)
            if existing is not None and existing.status == "open":
                return existing.state()
            reason = self._refusal(order, market)
            if reason is not None:
                return rejected(order, reason)
            self.poll(order.pair)  # orders already resting there come first
            submit = lambda request: self._submit(request, market)  # noqa: E731
            return submit_or_reject(order, submit, self.insufficient_cut)

    insufficient_cut = INSUFFICIENT_CUT  # "insufficient balance": once more for 1% less
    reduce_only_exempt = False  # futures: closing orders may be below the minimum value

    def _refusal(self, order: OrderRequest, market: dict[str, Any]) -> str | None:
        """Why the exchange would refuse this order before looking at funds, if it would."""
        if order.side == "short" and market.get("spot"):
            return "a spot market has no short positions"
        _check_prices(order)
        if not market.get("spot"):
            return "the paper broker simulates spot markets here; futures: PaperFuturesBroker"
        if market.get("active") is False:
            return MARKET_CLOSED
        return None

    def cancel(self, client_id: str, pair: str) -> OrderState:
        """Cancel an order; one that already filled or ended is returned as it ended.

        The market is looked at first: an order it has reached fills before the cancel.
        """
        self._market(pair)
        with self._lock:
            self.poll(pair)
            order = self._require(client_id, pair)
            if order.status == "open":
                self.account.end(order, "canceled", self._clock())
                self._save()
            return order.state()

    def fetch(self, client_id: str, pair: str) -> OrderState:
        self._market(pair)
        with self._lock:
            self.poll(pair)
            return self._require(client_id, pair).state()

    def find(self, client_id: str, pair: str) -> OrderState | None:
        self._market(pair)
        with self._lock:
            self.poll(pair)
            found = self.account.find(client_id, pair)
            return None if found is None else found.state()

    def tradable(self, pair: str, amount: float) -> float:
        return tradable_amount(self.exchange, self._market(pair), amount)

    def rules(self, pair: str) -> MarketRules | None:
        return market_rules(self.exchange, self._market(pair))

    def open_orders(self, pair: str | None = None) -> list[OrderState]:
        if pair is not None:
            self._market(pair)
        with self._lock:
            self.poll(pair)
            return [order.state() for order in self.account.resting(pair)]

    def funding(
        self, pair: str, since: pd.Timestamp, until: pd.Timestamp | None = None
    ) -> float | None:
        return None

    def liquidation(self, pair: str, since: pd.Timestamp) -> ExchangeLiquidation | None:
        return None  # a spot account is never liquidated

    def positions(self) -> list[ExchangePosition] | None:
        """A paper account keeps its positions in the executor's book: nothing to compare."""
        return None

    def replace_stop(self, client_id: str, pair: str, new: OrderRequest) -> OrderState:
        with self._lock:
            return replace_stop(self, client_id, pair, new)

    # -- looking at the market -----------------------------------------------------------

    def poll(self, pair: str | None = None) -> list[OrderState]:
        """Look at the market of `pair` (or of every pair with a resting order) and fill
        what it reached; returns the orders that changed, in placement order."""
        with self._lock:
            changed = [order for order in self.account.resting(pair) if self._work(order)]
            if changed:
                self._save()
            return [order.state() for order in changed]

    def _work(self, order: PaperOrder) -> bool:
        """One resting order against the current look; True if it changed."""
        triggered = False
        if order.stop is not None and not order.triggered:
            name, price = self._trigger(order.request.pair)
            if not stop_triggered(price, order.stop, order.buying):
                return False
            order.triggered = triggered = True
            order.updated = self._clock()
            order.log.append({"time": order.updated.isoformat(), f"triggered_at_{name}": price})
        # a triggered stop is a market order until it is filled or canceled
        return self._take(order, self._levels(order), arriving=False) or triggered

    def _take(self, order: PaperOrder, levels: list[Level], *, arriving: bool) -> bool:
        """Fill what an order can take from one side of the book, as far as funds go."""
        rule = self._rule(order, arriving=arriving)
        amount = self.account.affordable(order, levels, rule)
        if amount < order.remaining - EPSILON:  # a buy that funds cannot pay in full
            amount = self._cut(order.request.pair, amount)
        if amount <= EPSILON:
            return False
        return self.account.book(order, rule(levels, amount), self._clock())

    def _rule(self, order: PaperOrder, *, arriving: bool) -> FillRule:
        """How an order takes from the book: at market, on arrival, or resting at its limit."""
        request, limit, buying = order.request, order.limit, order.buying
        if limit is None:
            return lambda levels, amount: market_fill(
                levels, amount, self.fills, request.side, request.opening
            )
        if arriving:
            return lambda levels, amount: limit_on_arrival(levels, amount, limit, buying)
        return lambda levels, amount: limit_resting(levels, amount, limit, buying)

    def _trigger(self, pair: str) -> tuple[str, float]:
        """The price that triggers a stop, and its name: the last trade price on spot."""
        return "last", self._last(pair)

    def _symbol(self, pair: str) -> str:
        """The exchange's name for the market a pair trades on (spot: the pair itself)."""
        return pair

    def _last(self, pair: str) -> float:
        look = self._looks.setdefault(pair, _Look())
        if look.last is None or self._stale(look.last_at):
            symbol = self._symbol(pair)
            ticker = self._call(f"fetch ticker {pair}", lambda: self.exchange.fetch_ticker(symbol))
            last = ticker.get("last") or ticker.get("close")
            if not last:
                raise ExchangeError(
                    f"{self.exchange.id}: {pair} has no last price: its ticker is empty",
                    temporary=True,
                )
            look.last, look.last_at = float(last), self._clock()
        return look.last

    def _levels(self, order: PaperOrder) -> list[Level]:
        """The side of the book an order trades against: asks for a buy, bids for a sell."""
        pair = order.request.pair
        look = self._looks.setdefault(pair, _Look())
        if self._stale(look.book_at):
            book = self._call(
                f"fetch order book {pair}",
                lambda: self.exchange.fetch_order_book(self._symbol(pair), self.book_depth),
            )
            look.bids = [[float(p), float(a)] for p, a, *_ in book.get("bids") or []]
            look.asks = [[float(p), float(a)] for p, a, *_ in book.get("asks") or []]
            look.book_at = self._clock()
        return look.asks if order.buying else look.bids

    def _stale(self, at: pd.Timestamp | None) -> bool:
        return at is None or (self._clock() - at).total_seconds() >= self.look_interval

    # -- placing -------------------------------------------------------------------------

    def _submit(self, request: OrderRequest, market: dict[str, Any]) -> OrderState:
        order = self._new_order(request, market)
        amount, buying = order.request.amount, order.buying
        stop = order.stop
        if stop is not None and stop_triggered(self._trigger(request.pair)[1], stop, buying):
            raise Refused(WOULD_TRIGGER)
        levels = None if order.stop is not None else self._levels(order)
        price: float | None = order.limit if order.limit is not None else order.stop
        if levels is not None and order.is_market:  # priced by the book
            trial = self._rule(order, arriving=True)([list(level) for level in levels], amount)
            if trial.amount <= EPSILON:
                raise Refused(f"the order book of {request.pair} is empty")
            price = trial.average
        assert price is not None
        self._check_limits(order, market, price)
        self.account.reserve(order, price)
        if levels is not None:
            self._take(order, levels, arriving=True)
        if order.is_market and order.status == "open":  # the book could not take it all:
            self.account.end(order, "expired", self._clock())  # the rest never fills
        self.account.orders.append(order)
        self._save()
        return order.state()

    def _new_order(self, request: OrderRequest, market: dict[str, Any]) -> PaperOrder:
        """The order as the exchange would take it: amount and prices at its precision."""
        pair, kind = request.pair, request.kind
        symbol = self._symbol(pair)
        amount = self._precise(lambda: self.exchange.amount_to_precision(symbol, request.amount))
        return PaperOrder(
            dataclasses.replace(request, amount=amount),
            f"paper-{next(self._ids)}",
            market["base"],
            market["quote"],
            buying=(request.side == "long") == request.opening,
            limit=self._price(pair, request.price) if kind == "limit" else None,
            stop=self._price(pair, request.stop_price) if kind == "stop" else None,
            created=self._clock(),
        )

    def _check_limits(self, order: PaperOrder, market: dict[str, Any], price: float) -> None:
        """The market's minimum amount and order value, from its `limits` (load_markets)."""
        limits = market.get("limits") or {}
        amount = order.request.amount
        least = (limits.get("amount") or {}).get("min")
        if least and amount < least - EPSILON:
            raise Refused(
                f"Filter failure: LOT_SIZE (amount {amount:g} {order.base} is below the "
                f"market's minimum of {least:g})"
            )
        smallest = (limits.get("cost") or {}).get("min")
        exempt = self.reduce_only_exempt and not order.request.opening
        if smallest and not exempt and amount * price < smallest - EPSILON:
            raise Refused(
                f"Filter failure: NOTIONAL (order value {amount * price:.8g} {order.quote} is "
                f"below the market's minimum of {smallest:g})"
            )

    # -- helpers -------------------------------------------------------------------------

    def _save(self) -> None:
        """Keep the account in the journal after every change, so a restart resumes it."""
        if self._journal is not None:
            self._journal.set_state(self._journal_key, self.account.dump())

    def _require(self, client_id: str, pair: str) -> PaperOrder:
        found = self.account.find(client_id, pair)
        if found is None:
            raise ExchangeError(
                f"{self.exchange.id}: there is no order {client_id} on {pair}", temporary=False
            )
        return found

    def _precise(self, rounded: Callable[[], Any]) -> float:
        try:
            return float(rounded())
        except ccxt.BaseError as error:  # below the precision: ccxt's own refusal
            raise Refused(exchange_reason(error, self.exchange.id)) from None

    def _price(self, pair: str, price: float | None) -> float:
        assert price is not None  # _check_prices ran
        return self._precise(lambda: self.exchange.price_to_precision(self._symbol(pair), price))

    def _cut(self, pair: str, amount: float) -> float:
        """An amount rounded down to the market's precision; 0 when nothing is left."""
        try:
            return float(self.exchange.amount_to_precision(self._symbol(pair), amount * (1 - 1e-9)))
        except ccxt.BaseError:
            return 0.0

    def _market(self, pair: str) -> dict[str, Any]:
        if not self.exchange.markets:
            self._call("load markets", self.exchange.load_markets)
        try:
            return dict(self.exchange.market(self._symbol(pair)))
        except ccxt.BadSymbol:
            raise ExchangeError(
                f"{self.exchange.id}: {pair} is not a market on this exchange", temporary=False
            ) from None

    def _seconds(self) -> float:
        return float(self._clock().timestamp())

    def _call(self, what: str, action: Callable[[], T]) -> T:
        """One public request: paced, retried on temporary trouble, watched by the fail-safe."""
        return call_with_retry(
            lambda: self._attempt(action),
            exchange=self.exchange,
            what=what,
            policy=self._retry,
            on_retry=lambda text: log.warning("%s", text),
        )

    def _attempt(self, action: Callable[[], T]) -> T:
        self._pacer.wait()
        try:
            result = action()
        except NEUTRAL:  # rate limited: the exchange is busy, not down
            raise
        except ccxt.NetworkError as error:  # 5xx, timeouts, refused connections
            self._fail_safe.failure(outage_text(error))
            raise
        except Exception:
            self._fail_safe.success()
            raise
        self._fail_safe.success()
        return result


def _check_prices(order: OrderRequest) -> None:
    if order.kind == "limit" and order.price is None:
        raise ValueError(f"limit order {order.client_id} has no price")
    if order.kind == "stop" and order.stop_price is None:
        raise ValueError(f"stop order {order.client_id} has no stop_price")
