"""The stand-in's trading account: balances, orders, and fills driven by the clock.

The fill rules are simple and fixed, so that a test can predict every fill:
- the price "now" is the open of the candle in progress (finest interval held);
- market orders, and limits that cross that price, fill at once at it (taker);
- a resting limit fills in a closed candle that opened after it was placed and that
  trades through its price: a buy when low < price, at min(open, price); a sell when
  high > price, at max(open, price);
- a sell stop triggers in such a candle when low <= stop, at min(open, stop) (buys:
  high >= stop, at max(open, stop)); STOP_LOSS then fills there, and STOP_LOSS_LIMIT
  too when that is no worse than its limit, else it rests as a limit;
- fees are `fee_rate` of the quote amount, charged in the quote asset; a buy needs its
  cost plus fee free, and holds it (locked) while it rests.
Fills happen lazily: every trading request first brings the account up to the clock.
`partial_next` makes the next fills partial, the way a thin book does.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

import numpy as np

from tests.standin.market import INTERVAL_MS, Market
from tests.standin.router import ApiError

API_KEY = "standin-api-key-7f3a9c"
API_SECRET = "standin-api-secret-51be04"
TYPES = ("LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT")
INSUFFICIENT = "Account has insufficient balance for requested action."
ZERO = Decimal(0)


@dataclass
class Fill:
    trade_id: int
    order_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    buyer: bool
    maker: bool


@dataclass
class Order:
    order_id: int
    client_id: str
    symbol: str
    side: str  # BUY or SELL
    type: str  # one of TYPES
    quantity: Decimal
    price: Decimal  # limit price; 0 for MARKET and STOP_LOSS
    stop_price: Decimal  # 0 unless a stop
    time_in_force: str
    time: int
    status: str = "NEW"
    executed: Decimal = ZERO
    quote: Decimal = ZERO  # cumulative quote quantity
    locked: Decimal = ZERO  # funds still held for the unfilled part
    working: bool = True  # False until a stop triggers
    working_time: int = -1
    update_time: int = 0
    checked_until: int = 0  # candles opening before this have been matched
    fills: list[Fill] = field(default_factory=list)

    @property
    def buy(self) -> bool:
        return self.side == "BUY"

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed


class Account:
    def __init__(self, market: Market, *, api_key: str = API_KEY, fee_rate: str = "0.001") -> None:
        self.market = market
        self.api_key = api_key
        self.fee_rate = Decimal(fee_rate)
        self.balances: dict[str, list[Decimal]] = {}  # asset -> [free, locked]
        self.orders: list[Order] = []
        self.lock = threading.RLock()
        self._order_ids = itertools.count(4_000_001)
        self._trade_ids = itertools.count(900_001)
        self._partial: list[Decimal] = []

    # -- test controls -------------------------------------------------------------------

    def deposit(self, asset: str, amount: float | str) -> None:
        with self.lock:
            self._balance(asset)[0] += Decimal(str(amount))

    def free(self, asset: str) -> float:
        with self.lock:
            self.sync()
            return float(self._balance(asset)[0])

    def locked(self, asset: str) -> float:
        with self.lock:
            self.sync()
            return float(self._balance(asset)[1])

    def partial_next(self, n: int = 1, *, fraction: float = 0.5) -> None:
        """The next n fills take only `fraction` of what the order still wants."""
        with self.lock:
            self._partial.extend([Decimal(str(fraction))] * n)

    # -- exchange behaviour --------------------------------------------------------------

    def price_now(self, symbol: str) -> Decimal:
        interval = self.market.finest_interval(symbol)
        _, rows = self.market.visible(symbol, interval) if interval else (None, [])
        if not rows:
            raise ApiError(400, -1013, "Market is closed.")
        return Decimal(str(rows[-1][1]))

    def place(
        self,
        symbol: str,
        side: str,
        kind: str,
        quantity: Decimal,
        price: Decimal | None,
        stop_price: Decimal | None,
        client_id: str,
        time_in_force: str,
    ) -> Order:
        spec = self.market.symbols.get(symbol)
        if spec is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1100, "Illegal characters found in parameter 'side'.")
        if kind not in TYPES:
            raise ApiError(400, -1116, "Invalid orderType.")
        for name, value, needed in (
            ("price", price, kind in ("LIMIT", "STOP_LOSS_LIMIT")),
            ("stopPrice", stop_price, kind.startswith("STOP")),
            ("timeInForce", time_in_force, kind in ("LIMIT", "STOP_LOSS_LIMIT")),
        ):
            if needed and not value:
                raise ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent.")
        step, tick = Decimal(spec.step_size), Decimal(spec.tick_size)
        if quantity < step or quantity % step:
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE")
        if any(p is not None and p % tick for p in (price, stop_price)):
            raise ApiError(400, -1013, "Filter failure: PRICE_FILTER")
        if any(o.open and o.client_id == client_id for o in self.orders):
            raise ApiError(400, -2010, "Duplicate order sent.")
        now_price = self.price_now(symbol)
        if quantity * (price or now_price) < Decimal(spec.min_notional):
            raise ApiError(400, -1013, "Filter failure: NOTIONAL")
        buy = side == "BUY"
        if stop_price and (stop_price <= now_price if buy else stop_price >= now_price):
            raise ApiError(400, -2010, "Stop price would trigger immediately.")
        hold_price = price or stop_price or now_price
        asset = spec.quote if buy else spec.base
        hold = quantity * hold_price * (1 + self.fee_rate) if buy else quantity
        balance = self._balance(asset)
        if balance[0] < hold:
            raise ApiError(400, -2010, INSUFFICIENT)
        balance[0] -= hold
        balance[1] += hold
        now = self.market.clock.now()
        order = Order(
            next(self._order_ids), client_id, symbol, side, kind, quantity, price or ZERO,
            stop_price or ZERO, time_in_force if price else "GTC", now, locked=hold,
            working=not kind.startswith("STOP"), working_time=now, update_time=now,
            checked_until=now,
        )  # fmt: skip
        if not order.working:
            order.working_time = -1
        self.orders.append(order)
        marketable = price is not None and (price >= now_price if buy else price <= now_price)
        if order.working and (kind == "MARKET" or marketable):
            self._fill(order, now_price, now, maker=False)
        return order

    def cancel(self, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        order = self._lookup(symbol, order_id, client_id)
        if order is None or not order.open:
            raise ApiError(400, -2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_time = self.market.clock.now()
        self._release(order)
        return order

    def find(self, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        order = self._lookup(symbol, order_id, client_id)
        if order is None:
            raise ApiError(400, -2013, "Order does not exist.")
        return order

    def open_orders(self, symbol: str | None) -> list[Order]:
        return [o for o in self.orders if o.open and (symbol is None or o.symbol == symbol)]

    def trades(self, symbol: str, order_id: int | None) -> list[Fill]:
        return [
            f
            for o in self.orders
            if o.symbol == symbol and (order_id is None or o.order_id == order_id)
            for f in o.fills
        ]

    def sync(self) -> None:
        """Match every open order against the candles that closed since it was last looked at."""
        now = self.market.clock.now()
        for order in self.open_orders(None):
            interval = self.market.finest_interval(order.symbol)
            if interval is None:
                continue
            step = INTERVAL_MS[interval]
            times, rows = self.market.visible(order.symbol, interval)
            start = int(np.searchsorted(times, order.checked_until, side="left"))
            for row in rows[start:]:
                opened = int(str(row[0]))
                if opened + step > now:
                    break
                self._match(order, row, opened)
                order.checked_until = opened + step
                if not order.open:
                    break

    # -- internals -----------------------------------------------------------------------

    def _match(self, order: Order, row: list[object], opened: int) -> None:
        o, h, low = (Decimal(str(row[i])) for i in (1, 2, 3))
        if not order.working:
            stop = order.stop_price
            if not (h >= stop if order.buy else low <= stop):
                return
            order.working, order.working_time = True, opened
            at = max(o, stop) if order.buy else min(o, stop)
            no_worse = at <= order.price if order.buy else at >= order.price
            if order.type == "STOP_LOSS" or no_worse:
                self._fill(order, at, opened, maker=False)
            return
        price = order.price
        if order.buy and low < price:
            self._fill(order, min(o, price), opened, maker=True)
        elif not order.buy and h > price:
            self._fill(order, max(o, price), opened, maker=True)

    def _fill(self, order: Order, price: Decimal, when: int, *, maker: bool) -> None:
        spec = self.market.symbols[order.symbol]
        qty = order.remaining
        if self._partial:
            part = (qty * self._partial.pop(0)).quantize(Decimal(spec.step_size), ROUND_DOWN)
            qty = max(part, Decimal(spec.step_size))
        last = qty == order.remaining
        cost = price * qty
        fee = (cost * self.fee_rate).quantize(Decimal("1e-8"))
        held = order.locked if last else order.locked * qty / order.remaining
        order.locked -= held
        base, quote = self._balance(spec.base), self._balance(spec.quote)
        if order.buy:
            quote[1] -= held
            quote[0] += held - cost - fee
            base[0] += qty
        else:
            base[1] -= held
            quote[0] += cost - fee
        order.executed += qty
        order.quote += cost
        order.update_time = max(when, order.update_time)
        order.fills.append(
            Fill(next(self._trade_ids), order.order_id, order.symbol, price, qty, fee,
                 spec.quote, order.update_time, order.buy, maker)
        )  # fmt: skip
        if order.remaining == 0:
            order.status = "FILLED"
        elif order.type == "MARKET":  # what the book could not take now, it never will
            order.status = "EXPIRED"
            self._release(order)
        else:
            order.status = "PARTIALLY_FILLED"

    def _release(self, order: Order) -> None:
        spec = self.market.symbols[order.symbol]
        balance = self._balance(spec.quote if order.buy else spec.base)
        balance[0] += order.locked
        balance[1] -= order.locked
        order.locked = ZERO

    def _lookup(self, symbol: str, order_id: int | None, client_id: str | None) -> Order | None:
        for order in reversed(self.orders):  # a client id may be reused once its order ended
            if order.symbol != symbol:
                continue
            if (order_id is not None and order.order_id == order_id) or (
                order_id is None and order.client_id == client_id
            ):
                return order
        return None

    def _balance(self, asset: str) -> list[Decimal]:
        return self.balances.setdefault(asset, [ZERO, ZERO])
