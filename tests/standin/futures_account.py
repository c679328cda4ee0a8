"""The stand-in's USDⓈ-M futures account: a USDT wallet, one-way positions, margin, orders.

The same recorded candles as the spot market are the contract's trade prices. The mark
price is the contract price times a ratio a test sets per symbol (1 by default), so a
test can move the mark away from the last trade. Fixed, predictable rules:

- the price "now" is the open of the candle in progress; market orders fill at once at
  it (taker), and a limit that crosses it fills at once too;
- a resting limit fills in a closed candle that trades through it (as on spot);
- STOP_MARKET / TAKE_PROFIT_MARKET are algo orders (`/fapi/v1/algoOrder`, as on the
  exchange since its conditional orders moved there); they trigger in a closed candle
  on the price their `workingType` names (MARK_PRICE: the mark candle; CONTRACT_PRICE:
  the trade candle)
  and fill at the contract price the trigger corresponds to (the trigger divided by the
  mark ratio), or at the candle's open when it gapped past: the algo order is then
  FINISHED and names its market order (`actualOrderId`), which holds the fill;
- an opening order needs its initial margin (notional / leverage) plus its fee in the
  available balance, else -2019 "Margin is insufficient.";
- reduce-only orders never increase a position; one that would find nothing to reduce
  is refused (-2022) when placed and expires when triggered;
- isolated positions are liquidated when the mark candle reaches the liquidation price
  (the formula of kinetic_rules/margin.py, on the position's own margin) by a force
  order (liquidation.py): the whole margin is lost and the symbol's open orders are
  canceled;
- funding is charged at every 8-hour boundary (`funding_ms`) on |position| × mark × rate, as a
  FUNDING_FEE income record (a long pays a positive rate, a short receives it).
Fees are `fee_rate` of the notional, charged in USDT, as COMMISSION income records.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

import numpy as np

from tests.standin.account import API_KEY
from tests.standin.liquidation import liquidate
from tests.standin.market import INTERVAL_MS, Market
from tests.standin.router import ApiError

TYPES = ("LIMIT", "MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET")
FUNDING_MS = 8 * 3_600_000
ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass
class FuturesFill:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    realized: Decimal
    commission: Decimal
    time: int
    maker: bool


@dataclass
class Income:
    tran_id: int
    symbol: str
    kind: str  # FUNDING_FEE, REALIZED_PNL, COMMISSION
    amount: Decimal
    time: int
    trade_id: str = ""


@dataclass
class FuturesOrder:
    order_id: int
    client_id: str
    symbol: str
    side: str  # BUY or SELL
    type: str  # one of TYPES
    quantity: Decimal
    price: Decimal  # limit price, else 0
    stop_price: Decimal  # trigger price of STOP_MARKET / TAKE_PROFIT_MARKET, else 0
    reduce_only: bool
    working_type: str  # MARK_PRICE or CONTRACT_PRICE
    time_in_force: str
    time: int
    algo: bool = False  # a conditional order of the algo service (stops, take-profits)
    actual_id: int = 0  # the algo order's market order, once it triggered
    status: str = "NEW"
    executed: Decimal = ZERO
    quote: Decimal = ZERO
    update_time: int = 0
    checked_until: int = 0
    fills: list[FuturesFill] = field(default_factory=list)

    @property
    def buy(self) -> bool:
        return self.side == "BUY"

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed

    @property
    def average(self) -> Decimal:
        return self.quote / self.executed if self.executed else ZERO


@dataclass
class Position:
    symbol: str
    amount: Decimal = ZERO  # signed: negative is a short
    entry: Decimal = ZERO
    margin: Decimal = ZERO  # isolated margin held for it (0 under cross margin)
    update_time: int = 0


class FuturesAccount:
    def __init__(
        self,
        market: Market,
        *,
        api_key: str = API_KEY,
        fee_rate: str = "0.0004",
        maintenance: str = "0.005",
    ) -> None:
        self.market = market
        self.api_key = api_key
        self.fee_rate = Decimal(fee_rate)
        self.maintenance = Decimal(maintenance)
        self.wallet = ZERO
        self.dual_side = False  # hedge mode: the stand-in can be put in it, to be refused
        self.leverage: dict[str, int] = {}
        self.margin_type: dict[str, str] = {}  # ISOLATED or CROSSED (the exchange's default)
        self.positions: dict[str, Position] = {}
        self.orders: list[FuturesOrder] = []
        self.incomes: list[Income] = []
        self.mark_ratio: dict[str, Decimal] = {}
        self.funding_rate: dict[str, Decimal] = {}
        self.funding_ms = FUNDING_MS  # some symbols fund every 4 or 1 hours: tests may say so
        self.lock = threading.RLock()
        self._funded_until = 0  # funding boundaries at or before this are charged
        self._order_ids = itertools.count(8_000_001)
        self._trade_ids = itertools.count(700_001)
        self._tran_ids = itertools.count(5_000_001)

    # -- test controls -------------------------------------------------------------------

    def deposit(self, amount: float | str) -> None:
        with self.lock:
            self.wallet += Decimal(str(amount))

    def set_mark_ratio(self, symbol: str, ratio: float | str) -> None:
        """From now on the mark price is the contract price times `ratio`."""
        with self.lock:
            self.mark_ratio[symbol] = Decimal(str(ratio))

    def open_by_hand(self, symbol: str, amount: str, price: str | None = None) -> None:
        """A position changed outside the bot (someone used the exchange's web page)."""
        with self.lock:
            fill_at = Decimal(price) if price else self.price_now(symbol)
            self._trade(symbol, Decimal(amount), fill_at, self.market.clock.now())

    def position(self, symbol: str) -> Position:
        with self.lock:
            self.sync()
            return self.positions.get(symbol) or Position(symbol)

    def income(self, kind: str | None = None) -> list[Income]:
        with self.lock:
            self.sync()
            return [i for i in self.incomes if kind is None or i.kind == kind]

    # -- prices --------------------------------------------------------------------------

    def price_now(self, symbol: str) -> Decimal:
        interval = self.market.finest_interval(symbol)
        _, rows = self.market.visible(symbol, interval) if interval else (None, [])
        if not rows:
            raise ApiError(400, -1013, "Market is closed.")
        return Decimal(str(rows[-1][1]))

    def ratio(self, symbol: str) -> Decimal:
        return self.mark_ratio.get(symbol, ONE)

    def mark_now(self, symbol: str) -> Decimal:
        return (self.price_now(symbol) * self.ratio(symbol)).quantize(Decimal("1e-8"))

    def rate(self, symbol: str) -> Decimal:
        return self.funding_rate.get(symbol, Decimal("0.0001"))

    # -- margin --------------------------------------------------------------------------

    def leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol, 20)

    def isolated(self, symbol: str) -> bool:
        return self.margin_type.get(symbol, "CROSSED") == "ISOLATED"

    def unrealized(self, position: Position) -> Decimal:
        if not position.amount:
            return ZERO
        return position.amount * (self.mark_now(position.symbol) - position.entry)

    def initial_margin(self, position: Position) -> Decimal:
        notional = abs(position.amount) * position.entry
        return notional / self.leverage_of(position.symbol)

    def available(self) -> Decimal:
        """Wallet less what positions hold (isolated margin, or cross initial margin)."""
        held = ZERO
        for position in self.positions.values():
            if not position.amount:
                continue
            if self.isolated(position.symbol):
                held += position.margin
            else:
                held += self.initial_margin(position) - self.unrealized(position)
        return self.wallet - held

    def liquidation_price(self, position: Position) -> Decimal:
        """Where the position's margin falls to the maintenance margin (0: never)."""
        if not position.amount:
            return ZERO
        qty, sign = abs(position.amount), ONE if position.amount > 0 else -ONE
        margin = position.margin if self.isolated(position.symbol) else self.available_for(position)
        price = (sign * qty * position.entry - margin) / (qty * (sign - self.maintenance))
        return max(price, ZERO).quantize(Decimal("1e-8"))

    def available_for(self, position: Position) -> Decimal:
        """Under cross margin, the wallet stands behind the position."""
        return self.wallet

    # -- orders --------------------------------------------------------------------------

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
        *,
        reduce_only: bool,
        working_type: str,
        algo: bool = False,
    ) -> FuturesOrder:
        spec = self.market.symbols.get(symbol)
        if spec is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        if kind not in TYPES:
            raise ApiError(400, -1116, "Invalid orderType.")
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1100, "Illegal characters found in parameter 'side'.")
        if kind == "LIMIT" and not price:
            raise ApiError(400, -1102, "Mandatory parameter 'price' was not sent.")
        if kind.endswith("_MARKET") != algo:
            raise ApiError(
                400, -4500, f"{kind} orders go to the {'order' if algo else 'algo'} API."
            )
        if kind.endswith("_MARKET") and not stop_price:
            raise ApiError(400, -1102, "Mandatory parameter 'stopPrice' was not sent.")
        step, tick = Decimal(spec.step_size), Decimal(spec.tick_size)
        if quantity < step or quantity % step:
            raise ApiError(400, -1111, "Precision is over the maximum defined for this asset.")
        if any(p is not None and p % tick for p in (price, stop_price)):
            raise ApiError(400, -4014, "Price not increased by tick size.")
        if any(o.open and o.client_id == client_id and o.algo == algo for o in self.orders):
            raise ApiError(400, -4116, "ClientOrderId is duplicated.")
        buy = side == "BUY"
        now_price = self.price_now(symbol)
        position = self.positions.get(symbol) or Position(symbol)
        if reduce_only and not _reduces(position.amount, buy):
            raise ApiError(400, -2022, "ReduceOnly Order is rejected.")
        if stop_price:
            current = self.mark_now(symbol) if working_type == "MARK_PRICE" else now_price
            falling = (kind == "STOP_MARKET") != buy  # a sell stop waits for a fall
            if stop_price >= current if falling else stop_price <= current:
                raise ApiError(400, -2021, "Order would immediately trigger.")
        if quantity * (price or stop_price or now_price) < Decimal(spec.min_notional) and not (
            reduce_only
        ):
            raise ApiError(400, -4164, "Order's notional must be no smaller than 5.")
        if not reduce_only:
            self._require_margin(symbol, quantity, price or now_price, buy)
        now = self.market.clock.now()
        order = FuturesOrder(
            next(self._order_ids), client_id, symbol, side, kind, quantity, price or ZERO,
            stop_price or ZERO, reduce_only, working_type,
            time_in_force if kind == "LIMIT" else "GTC", now, algo=algo, update_time=now,
            checked_until=now,
        )  # fmt: skip
        self.orders.append(order)
        marketable = price is not None and (price >= now_price if buy else price <= now_price)
        if kind == "MARKET" or (kind == "LIMIT" and marketable):
            self._fill(order, now_price, now, maker=False)
        return order

    def cancel(
        self, symbol: str, order_id: int | None, client_id: str | None, *, algo: bool = False
    ) -> FuturesOrder:
        order = self._lookup(symbol, order_id, client_id, algo)
        if order is None or not order.open:
            raise ApiError(400, -2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_time = self.market.clock.now()
        return order

    def find(
        self, symbol: str, order_id: int | None, client_id: str | None, *, algo: bool = False
    ) -> FuturesOrder:
        order = self._lookup(symbol, order_id, client_id, algo)
        if order is None:
            raise ApiError(400, -2013, "Order does not exist.")
        return order

    def open_orders(self, symbol: str | None, algo: bool | None = None) -> list[FuturesOrder]:
        return [
            o
            for o in self.orders
            if o.open and (symbol is None or o.symbol == symbol) and algo in (None, o.algo)
        ]

    def trades(self, symbol: str, order_id: int | None) -> list[FuturesFill]:
        return [
            f
            for o in self.orders
            if o.symbol == symbol and (order_id is None or o.order_id == order_id)
            for f in o.fills
        ]

    # -- time passes ---------------------------------------------------------------------

    def sync(self) -> None:
        """Bring orders, liquidations and funding up to the clock, candle by candle."""
        now = self.market.clock.now()
        symbols = {o.symbol for o in self.open_orders(None)}
        symbols |= {s for s, p in self.positions.items() if p.amount}
        for symbol in sorted(symbols):
            self._sync_symbol(symbol, now)
        self._charge_funding(now)

    def _sync_symbol(self, symbol: str, now: int) -> None:
        interval = self.market.finest_interval(symbol)
        if interval is None:
            return
        step = INTERVAL_MS[interval]
        times, rows = self.market.visible(symbol, interval)
        pending = [o.checked_until for o in self.open_orders(symbol)]
        position = self.positions.get(symbol)
        if position is not None and position.amount:
            pending.append(position.update_time)
        if not pending:
            return
        start = int(np.searchsorted(times, min(pending), side="left"))
        for row in rows[start:]:
            opened = int(str(row[0]))
            if opened + step > now:
                break
            for order in self.open_orders(symbol):
                if order.checked_until <= opened:
                    self._match(order, row, opened)
                    order.checked_until = opened + step
            self._liquidate_if_reached(symbol, row, opened + step - 1)

    def _match(self, order: FuturesOrder, row: list[object], opened: int) -> None:
        o, h, low = (Decimal(str(row[i])) for i in (1, 2, 3))
        if order.stop_price:
            ratio = self.ratio(order.symbol) if order.working_type == "MARK_PRICE" else ONE
            high, bottom = h * ratio, low * ratio
            falling = (order.type == "STOP_MARKET") != order.buy
            stop = order.stop_price
            if not (bottom <= stop if falling else high >= stop):
                return
            at = stop / ratio
            at = min(o, at) if falling else max(o, at)
            position = self.positions.get(order.symbol) or Position(order.symbol)
            if order.reduce_only and not _reduces(position.amount, order.buy):
                order.status, order.update_time = "EXPIRED", opened
                return
            tick = Decimal(self.market.symbols[order.symbol].tick_size)
            actual = FuturesOrder(
                next(self._order_ids), f"algo-{order.order_id}", order.symbol, order.side,
                "MARKET", order.quantity, ZERO, ZERO, order.reduce_only, order.working_type,
                "GTC", opened, update_time=opened, checked_until=opened,
            )  # fmt: skip
            self.orders.append(actual)
            self._fill(actual, at.quantize(tick), opened, maker=False)
            order.status, order.actual_id, order.update_time = "FINISHED", actual.order_id, opened
            return
        price = order.price
        if order.buy and low < price:
            self._fill(order, min(o, price), opened, maker=True)
        elif not order.buy and h > price:
            self._fill(order, max(o, price), opened, maker=True)

    def _fill(self, order: FuturesOrder, price: Decimal, when: int, *, maker: bool) -> None:
        qty = order.remaining
        position = self.positions.get(order.symbol) or Position(order.symbol)
        signed = qty if order.buy else -qty
        if order.reduce_only:
            signed = _clip_reducing(position.amount, signed)
            if not signed:
                order.status, order.update_time = "EXPIRED", when
                return
            qty = abs(signed)
        realized, fee = self._trade(order.symbol, signed, price, when)
        order.executed += qty
        order.quote += price * qty
        order.update_time = max(when, order.update_time)
        fill = FuturesFill(
            next(self._trade_ids), order.order_id, order.symbol, order.side, price, qty,
            realized, fee, order.update_time, maker,
        )  # fmt: skip
        order.fills.append(fill)
        self._income(order.symbol, "COMMISSION", -fee, when, str(fill.trade_id))
        if realized:
            self._income(order.symbol, "REALIZED_PNL", realized, when, str(fill.trade_id))
        order.status = "FILLED" if order.remaining == 0 else "EXPIRED"

    def _trade(
        self, symbol: str, signed: Decimal, price: Decimal, when: int
    ) -> tuple[Decimal, Decimal]:
        """Change the position by `signed` at `price`: (realized profit, fee)."""
        position = self.positions.setdefault(symbol, Position(symbol))
        fee = (abs(signed) * price * self.fee_rate).quantize(Decimal("1e-8"))
        realized = ZERO
        before = position.amount
        if before and (before > 0) != (signed > 0):  # reduces (maybe flips)
            closed = min(abs(signed), abs(before))
            sign = ONE if before > 0 else -ONE
            realized = sign * closed * (price - position.entry)
            released = position.margin * closed / abs(before)
            position.margin -= released
            position.amount += sign * -closed
            signed += sign * closed
            if not position.amount:
                position.entry, position.margin = ZERO, ZERO
        if signed:  # opens or increases
            total = position.amount + signed
            position.entry = (position.entry * abs(position.amount) + price * abs(signed)) / abs(
                total
            )
            position.amount = total
            if self.isolated(symbol):
                position.margin += abs(signed) * price / self.leverage_of(symbol)
        position.update_time = when
        self.wallet += realized - fee
        return realized, fee

    def _require_margin(self, symbol: str, quantity: Decimal, price: Decimal, buy: bool) -> None:
        position = self.positions.get(symbol) or Position(symbol)
        opening = quantity - (abs(position.amount) if _reduces(position.amount, buy) else ZERO)
        if opening <= 0:
            return
        needed = opening * price / self.leverage_of(symbol) + opening * price * self.fee_rate
        if needed > self.available():
            raise ApiError(400, -2019, "Margin is insufficient.")

    def _liquidate_if_reached(self, symbol: str, row: list[object], when: int) -> None:
        position = self.positions.get(symbol)
        if position is None or not position.amount or not self.isolated(symbol):
            return
        ratio = self.ratio(symbol)
        high, low = Decimal(str(row[2])) * ratio, Decimal(str(row[3])) * ratio
        liquidation = self.liquidation_price(position)
        long = position.amount > 0
        if not (low <= liquidation if long else high >= liquidation):
            return
        liquidate(self, position, liquidation, when)

    def _charge_funding(self, now: int) -> None:
        every = self.funding_ms
        first = (self._funded_until // every + 1) * every
        for boundary in range(first, now + 1, every):
            for symbol, position in sorted(self.positions.items()):
                if not position.amount or position.update_time > boundary:
                    continue
                mark = self._mark_at(symbol, boundary)
                fee = -(position.amount * mark * self.rate(symbol)).quantize(Decimal("1e-8"))
                self.wallet += fee
                self._income(symbol, "FUNDING_FEE", fee, boundary)
        self._funded_until = max(self._funded_until, now)

    def _mark_at(self, symbol: str, when: int) -> Decimal:
        interval = self.market.finest_interval(symbol)
        times, rows = self.market.visible(symbol, interval) if interval else (None, [])
        if not rows or times is None:
            return ZERO
        index = max(0, int(np.searchsorted(times, when, side="right")) - 1)
        return Decimal(str(rows[index][1])) * self.ratio(symbol)

    def _income(self, symbol: str, kind: str, amount: Decimal, when: int, trade: str = "") -> None:
        self.incomes.append(Income(next(self._tran_ids), symbol, kind, amount, when, trade))

    def _lookup(
        self, symbol: str, order_id: int | None, client_id: str | None, algo: bool = False
    ) -> FuturesOrder | None:
        for order in reversed(self.orders):
            if order.symbol != symbol or order.algo != algo:
                continue
            if (order_id is not None and order.order_id == order_id) or (
                order_id is None and order.client_id == client_id
            ):
                return order
        return None


def _reduces(amount: Decimal, buy: bool) -> bool:
    return amount < 0 if buy else amount > 0


def _clip_reducing(amount: Decimal, signed: Decimal) -> Decimal:
    """What of `signed` reduces the position `amount`, no more (reduce-only)."""
    if not _reduces(amount, signed > 0):
        return ZERO
    return signed if abs(signed) <= abs(amount) else -amount


def truncate(value: Decimal, step: str) -> Decimal:
    return value.quantize(Decimal(step), ROUND_DOWN)
