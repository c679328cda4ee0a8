"""Real orders through ccxt: the Broker protocol on an exchange account.

Every HTTP request the client sends waits for the Pacer (≥ rate_limit_ms apart);
every call goes through `call_with_retry` (429: 1 → 60 s honouring Retry-After;
network trouble and 5xx: 1, 2, 4 … 30 s); outages feed the FailSafe; a refused
API key ends in ExchangeError(temporary=False). An order the exchange refuses is
not an exception but an OrderState with status "rejected" and the exchange's reason.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

import ccxt
import pandas as pd

from kinetic_rules.data.exchange import RetryPolicy, call_with_retry, create_exchange
from kinetic_rules.engine.orders import OrderKind, OrderState, OrderStatus
from kinetic_rules.errors import ConfigError, ExchangeError
from kinetic_rules.live.broker import (
    INSUFFICIENT_CUT,
    OrderRequest,
    Refused,
    rejected,
    replace_stop,
    submit_or_reject,
)
from kinetic_rules.live.ccxt_futures import REFUSALS, FuturesCalls
from kinetic_rules.live.futures import (
    INSUFFICIENT_MARGIN_CUT,
    FuturesSettings,
    FuturesVenue,
    venue_for,
)
from kinetic_rules.live.robust import (
    FailSafe,
    Pacer,
    RedactingLogger,
    Redactor,
    exchange_reason,
    live_retry,
    market_rules,
    outage_text,
    tradable_amount,
)
from kinetic_rules.market_rules import MarketRules

log = logging.getLogger(__name__)
T = TypeVar("T")

ENV_KEY = "KINETIC_API_KEY"
ENV_SECRET = "KINETIC_API_SECRET"
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")  # what Binance accepts as newClientOrderId
STATUSES: tuple[OrderStatus, ...] = ("open", "closed", "canceled", "rejected", "expired")
# the exchange answered, so they say nothing about an outage either way
NEUTRAL = (ccxt.DDoSProtection, ccxt.RateLimitExceeded, ccxt.InvalidNonce)


class Reconciliation(NamedTuple):
    unknown: list[OrderState]  # open on the exchange, but not among the ids we know
    missing: list[str]  # ids we know that are no longer open on the exchange: fetch them


class CcxtBroker(FuturesCalls):
    """An exchange account through a ccxt client, one stake currency: spot, or futures
    when given a `futures` venue (see live/futures.py for what differs per exchange).

    The broker takes the client over: it paces the client's HTTP requests, turns its
    verbose output off and routes its debug log through a redactor, because ccxt logs
    request headers (the API key among them) at DEBUG. `clock` and `sleep` drive the
    pacing, the backoff and the fail-safe alike, so tests run in simulated time.
    """

    def __init__(
        self,
        exchange: Any,
        *,
        stake_currency: str,
        rate_limit_ms: int = 200,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_fail_safe: Callable[[bool, str], None] | None = None,
        fail_safe_after: float = 300.0,
        client_prefix: str = "kr-",
        futures: tuple[FuturesVenue, FuturesSettings] | None = None,
    ) -> None:
        self.exchange = exchange
        self.stake_currency = stake_currency
        self.client_prefix = client_prefix
        self._retry = dataclasses.replace(retry or live_retry(), sleep=sleep)
        self._pacer = Pacer(rate_limit_ms / 1000, clock=clock, sleep=sleep)
        self._fail_safe = FailSafe(
            f"exchange {exchange.id}", clock=clock, after=fail_safe_after, on_change=on_fail_safe
        )
        self._redact = Redactor([exchange.apiKey, exchange.secret, exchange.password])
        self._kinds: dict[str, OrderKind] = {}  # what we placed, by client id
        self._fees: dict[str, tuple[float, float]] = {}  # client id -> (filled, fee) seen last
        self._venue: FuturesVenue | None = futures[0] if futures else None
        self._settings = futures[1] if futures else FuturesSettings()
        self._leverage: dict[str, int] = {}  # futures: what was set per symbol, this session
        self._take_over(exchange)

    def __repr__(self) -> str:
        return f"CcxtBroker({self.exchange.id!r}, stake_currency={self.stake_currency!r})"

    @property
    def fail_safe(self) -> bool:
        """True while the exchange has been unreachable for more than 5 minutes."""
        return self._fail_safe.active

    def owns(self, client_id: str) -> bool:
        """Whether an order id has our prefix (placed by this bot, perhaps before a restart)."""
        return client_id.startswith(self.client_prefix)

    # -- the Broker protocol -------------------------------------------------------------

    def free_balance(self, currency: str) -> float:
        return self._balance(currency, "free")

    def total_balance(self, currency: str) -> float:
        return self._balance(currency, "total")

    def _balance(self, currency: str, which: str) -> float:
        self._load_markets()
        balance = self._call("fetch balance", self.exchange.fetch_balance)
        return float((balance.get(currency) or {}).get(which) or 0.0)

    def tradable(self, pair: str, amount: float) -> float:
        return tradable_amount(self.exchange, self._market(pair), amount)

    def rules(self, pair: str) -> MarketRules | None:
        return market_rules(self.exchange, self._market(pair))

    def place(self, order: OrderRequest) -> OrderState:
        """Send an order; a refusal comes back as status "rejected" with the reason, and
        "insufficient balance" is tried once more for 1% less (see submit_or_reject)."""
        if not CLIENT_ID.match(order.client_id):
            raise ValueError(f"client id {order.client_id!r}: 1-36 of A-Z a-z 0-9 _ - expected")
        market = self._market(order.pair)
        self._kinds[order.client_id] = order.kind
        if order.side == "short" and market.get("spot"):
            return rejected(order, "a spot market has no short positions")
        if self._venue is None:
            return submit_or_reject(order, self._submit, INSUFFICIENT_CUT)
        if order.opening:
            self._prepare(order)
        return submit_or_reject(order, self._submit, INSUFFICIENT_MARGIN_CUT)

    def _symbol(self, pair: str) -> str:
        return pair if self._venue is None else self._venue.symbol(pair)

    def _ask(self, kind: OrderKind | None) -> dict[str, Any]:
        """Extra parameters to find or cancel an order of this kind (futures stops)."""
        return {} if self._venue is None or kind is None else self._venue.conditional(kind)

    def cancel(self, client_id: str, pair: str) -> OrderState:
        """Cancel an order; one that already filled or ended is returned as it ended."""
        self._market(pair)
        symbol, kind = self._symbol(pair), self._kinds.get(client_id)
        if kind is None and self._venue is not None:
            found = self.find(client_id, pair)  # after a restart: which service holds it
            kind = self._kinds.get(client_id)
            if found is None or found.done:
                return found or self.fetch(client_id, pair)

        def cancel() -> Any:
            try:
                params = {"clientOrderId": client_id, **self._ask(kind)}
                return self.exchange.cancel_order("", symbol, params)
            except ccxt.OrderNotFound:
                return None

        raw = self._call(f"cancel {client_id} on {pair}", cancel)
        if raw is None or self._ask(kind):  # a canceled algo order answers with its id only
            return self.fetch(client_id, pair)
        return self._finish(raw, client_id, pair)

    def fetch(self, client_id: str, pair: str) -> OrderState:
        state = self.find(client_id, pair)
        if state is None:
            raise ExchangeError(
                f"{self.exchange.id}: there is no order {client_id} on {pair}", temporary=False
            )
        return state

    def find(self, client_id: str, pair: str) -> OrderState | None:
        self._market(pair)
        raw = self._call(f"fetch {client_id} on {pair}", lambda: self._find(client_id, pair))
        return None if raw is None else self._finish(raw, client_id, pair)

    def open_orders(self, pair: str | None = None) -> list[OrderState]:
        self._load_markets() if pair is None else self._market(pair)
        symbol = None if pair is None else self._symbol(pair)
        raws = self._call("fetch open orders", lambda: self.exchange.fetch_open_orders(symbol))
        if self._venue is not None:  # stops and take-profits are asked for separately
            asked = self._venue.conditional("stop")
            raws = raws + self._call(
                "fetch open stop orders",
                lambda: self.exchange.fetch_open_orders(symbol, None, None, asked),
            )
        return [self._finish(raw, _client_id(raw), raw.get("symbol") or pair or "") for raw in raws]

    def replace_stop(self, client_id: str, pair: str, new: OrderRequest) -> OrderState:
        return replace_stop(self, client_id, pair, new)

    def reconcile(self, known_client_ids: Iterable[str]) -> Reconciliation:
        """At start-up: open orders we do not know of, and known orders no longer open."""
        known = set(known_client_ids)
        orders = self.open_orders()
        unknown = [o for o in orders if o.client_id not in known]
        for o in unknown:
            whose = "placed by this bot before a restart" if self.owns(o.client_id) else "foreign"
            log.warning("open order %s on %s is unknown here (%s)", o.client_id, o.pair, whose)
        present = {o.client_id for o in orders}
        return Reconciliation(unknown, sorted(known - present))

    # -- requests ------------------------------------------------------------------------

    def _take_over(self, exchange: Any) -> None:
        exchange.verbose = False  # verbose output prints request headers to stdout
        exchange.logger = RedactingLogger(logging.getLogger(f"{__name__}.http"), self._redact)
        exchange.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        exchange.options["fetchCurrencies"] = False  # private currency list: not needed
        exchange.options["fetchMargins"] = False  # margin pairs: spot only here
        send = exchange.fetch

        def paced(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
            self._pacer.wait()
            return send(url, method, headers, body)

        exchange.fetch = paced

    def _call(self, what: str, action: Callable[[], T]) -> T:
        """One exchange call, retried on temporary trouble; errors come out redacted."""
        try:
            return call_with_retry(
                lambda: self._attempt(what, action),
                exchange=self.exchange,
                what=what,
                policy=self._retry,
                on_retry=lambda text: log.warning("%s", self._redact(text)),
            )
        except ExchangeError as error:
            raise ExchangeError(self._redact(str(error)), temporary=error.temporary) from None

    def _attempt(self, what: str, action: Callable[[], T]) -> T:
        try:
            result = action()
        except NEUTRAL:
            raise
        except ccxt.NetworkError as error:  # 5xx, timeouts, refused connections
            self._fail_safe.failure(outage_text(error))
            raise
        except ccxt.OperationFailed as error:  # its -1000/-1001: "internal error, try again"
            if isinstance(error, ccxt.BadResponse):
                raise
            self._fail_safe.failure(outage_text(error))
            raise ccxt.ExchangeNotAvailable(str(error)) from error
        except ccxt.AuthenticationError as error:
            self._fail_safe.success()
            reason = self._redact(exchange_reason(error, self.exchange.id))
            raise ExchangeError(
                f"{self.exchange.id}: {what}: the exchange refused the API credentials "
                f"({reason}); check {ENV_KEY} and {ENV_SECRET}, and that the key may trade "
                "from this IP address",
                temporary=False,
            ) from None
        except Exception:
            self._fail_safe.success()
            raise
        self._fail_safe.success()
        return result

    def _load_markets(self) -> None:
        if not self.exchange.markets:
            self._call("load markets", self.exchange.load_markets)

    def _market(self, pair: str) -> dict[str, Any]:
        self._load_markets()
        try:
            return dict(self.exchange.market(self._symbol(pair)))
        except ccxt.BadSymbol:
            raise ExchangeError(
                f"{self.exchange.id}: {pair} is not a market on this exchange", temporary=False
            ) from None

    def _find(self, client_id: str, pair: str) -> Any:
        symbol, kind = self._symbol(pair), self._kinds.get(client_id)
        kinds: list[OrderKind | None] = [kind]
        if kind is None and self._venue is not None:  # after a restart: try both services
            kinds = ["market", "stop"]
        for each in kinds:
            try:
                raw = self.exchange.fetch_order("", symbol, {"clientOrderId": client_id,
                                                             **self._ask(each)})  # fmt: skip
            except ccxt.OrderNotFound:
                continue
            if kind is None and each == "stop":
                self._kinds[client_id] = "stop"
            return raw
        return None

    def _submit(self, order: OrderRequest) -> OrderState:
        """Create the order; a retry first looks for it, as a timed-out request may have landed."""
        side = "buy" if (order.side == "long") == order.opening else "sell"
        kind, price, params = self._shape(order, side)
        sent = False

        def create() -> Any:
            nonlocal sent
            if sent and (landed := self._find(order.client_id, order.pair)) is not None:
                return landed
            sent = True
            try:
                return self.exchange.create_order(
                    self._symbol(order.pair), kind, side, order.amount, price, {**params}
                )
            except ccxt.ExchangeError as error:
                insufficient = isinstance(error, ccxt.InsufficientFunds)
                if not isinstance(error, REFUSALS):
                    said = None if self._venue is None else self._venue.refusal(error)
                    if said is None:
                        raise
                    insufficient = said
                reason = exchange_reason(error, self.exchange.id)
                if "duplicate" in reason.lower():
                    landed = self._find(order.client_id, order.pair)
                    if landed is not None:
                        return landed
                raise Refused(self._redact(reason), insufficient=insufficient) from None

        what = f"place {order.client_id} ({order.kind} {side} {order.amount:g} {order.pair})"
        return self._finish(self._call(what, create), order.client_id, order.pair)

    def _shape(self, order: OrderRequest, side: str) -> tuple[str, float | None, dict[str, Any]]:
        """ccxt's (type, price, params); a stop with a `price` is a stop-limit."""
        params: dict[str, Any] = {"clientOrderId": order.client_id}
        if self._venue is not None:
            params.update(self._venue.order_params(order, self._settings))
        if order.kind == "market":
            return "market", None, params
        if order.kind == "limit":
            if order.price is None:
                raise ValueError(f"limit order {order.client_id} has no price")
            return "limit", order.price, params
        if order.stop_price is None:
            raise ValueError(f"stop order {order.client_id} has no stop_price")
        stop = {**params, "stopLossPrice": order.stop_price}
        if order.price is None:  # Binance spot: STOP_LOSS, a market order once triggered
            return "market", None, stop
        return "limit", order.price, stop  # STOP_LOSS_LIMIT

    # -- answers -------------------------------------------------------------------------

    def _finish(self, raw: Any, client_id: str, pair: str) -> OrderState:
        """The OrderState of a ccxt order, with its fee in the stake currency."""
        venue = self._venue
        if venue is not None:
            symbol = self._symbol(pair)
            raw = self._call(
                f"fetch the fill of {client_id}", lambda: venue.settle(self.exchange, raw, symbol)
            )
            pair = venue.pair(str(raw.get("symbol") or pair))
        info = raw.get("info") or {}
        status = raw.get("status")
        stamp = raw.get("lastUpdateTimestamp") or raw.get("timestamp")
        average = raw.get("average")
        state = OrderState(
            client_id=client_id,
            exchange_id=str(raw.get("id") or ""),
            pair=pair if self._venue is not None else raw.get("symbol") or pair,
            status=status if status in STATUSES else "open",  # "canceling" is still open
            kind=self._kinds.get(client_id) or _kind_of(raw),
            amount=float(raw.get("amount") or 0.0),
            filled=float(raw.get("filled") or 0.0),
            average=float(average) if average else None,
            updated=pd.Timestamp(stamp, unit="ms", tz="UTC") if stamp else None,
            raw=dict(info),
        )
        if state.filled > 0:
            state.fee = self._fee(
                raw, state, str(raw.get("exchange_order_id") or state.exchange_id)
            )
        return state

    def _fee(self, raw: Any, state: OrderState, order_id: str) -> float:
        """From the order's own fills when it has them, else from its trades (cached)."""
        if raw.get("trades"):
            fee = self._fee_of(raw["trades"], state.pair)
        elif (seen := self._fees.get(state.client_id)) and seen[0] == state.filled:
            fee = seen[1]
        else:
            trades = self._call(
                f"fetch trades of {state.client_id}",
                lambda: self._order_trades(order_id, self._symbol(state.pair)),
            )
            fee = self._fee_of(trades, state.pair)
        self._fees[state.client_id] = (state.filled, fee)
        return fee

    def _order_trades(self, order_id: str, symbol: str) -> list[Any]:
        if self._venue is not None:
            return self._venue.order_trades(self.exchange, order_id, symbol)
        return list(self.exchange.fetch_order_trades(order_id, symbol))

    def _fee_of(self, trades: list[Any], pair: str) -> float:
        market = self.exchange.market(self._symbol(pair))
        total = 0.0
        for trade in trades:
            fee = trade.get("fee") or {}
            cost, currency = float(fee.get("cost") or 0.0), fee.get("currency")
            if not cost:
                continue
            if currency in (self.stake_currency, market["quote"]):
                total += cost
            elif currency == market["base"]:
                total += cost * float(trade.get("price") or 0.0)
            else:
                log.info("fee of %g %s on %s not counted in %s", cost, currency, pair,
                         self.stake_currency)  # fmt: skip
        return total


def broker_from_env(
    exchange_id: str,
    *,
    stake_currency: str,
    url_override: str | None = None,
    environ: Mapping[str, str] | None = None,
    futures: FuturesSettings | None = None,
    **settings: Any,
) -> CcxtBroker:
    """A CcxtBroker with the API key and secret from KINETIC_API_KEY / KINETIC_API_SECRET.

    `url_override` re-hosts every API URL (the stand-in in tests); `settings` go to
    CcxtBroker. The key is read from the environment only, never from a file or flag.
    With `futures`, the client is the exchange's futures one (live/futures.py).
    """
    venue = None if futures is None else venue_for(exchange_id)  # refused before the keys
    env = os.environ if environ is None else environ
    key, secret = env.get(ENV_KEY, "").strip(), env.get(ENV_SECRET, "").strip()
    missing = [name for name, value in ((ENV_KEY, key), (ENV_SECRET, secret)) if not value]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigError(
            f"{' and '.join(missing)} {verb} not set: live trading reads the exchange API key "
            f"and secret from the environment variables {ENV_KEY} and {ENV_SECRET}"
        )
    exchange = create_exchange(venue.ccxt_id if venue else exchange_id, api_url=url_override)
    exchange.apiKey, exchange.secret = key, secret
    on = None if venue is None or futures is None else (venue, futures)
    return CcxtBroker(exchange, stake_currency=stake_currency, futures=on, **settings)


def _ms(stamp: pd.Timestamp) -> int:
    return int(stamp.value // 1_000_000)


def _client_id(raw: Any) -> str:
    info = raw.get("info") or {}
    return str(info.get("origClientOrderId") or raw.get("clientOrderId") or "")


def _kind_of(raw: Any) -> OrderKind:
    kind = str((raw.get("info") or {}).get("type") or "").upper()
    if kind.startswith(("STOP", "TAKE_PROFIT")) or raw.get("triggerPrice"):
        return "stop"
    return "market" if raw.get("type") == "market" else "limit"
