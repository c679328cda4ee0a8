"""The paper futures broker's simulated margin account: a wallet in the settlement
currency, one position per symbol (one-way mode), each symbol's leverage and margin
mode, and the margin that resting orders hold. It knows nothing of the exchange; the
broker feeds it fills, mark prices and funding rates.

The rules are Binance USDⓈ-M's, as far as a bot meets them:

- an order that opens or adds to a position needs its initial margin (notional ÷
  leverage) plus its fee free in the wallet, held while it rests; otherwise it is
  refused as "Margin is insufficient." (and the broker tries once more at half size);
- a reduce-only order is refused when it would increase the position or flip it to the
  other side, and when it fills it never takes more than the position holds: what is
  left of it then expires;
- a position's margin (isolated: its own; cross: the wallet's free balance) is lost when
  the mark price reaches its liquidation price, which is kinetic_rules/margin.py's, the
  formula the backtest uses; its resting orders are canceled, as the exchange does;
- funding is paid at each funding time on the position × mark price × rate, a long
  paying a positive rate and a short receiving it.

Equity is the wallet plus the positions' unrealized profit at the mark price; the wallet
moves only by realized profit, fees, funding and liquidations.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pandas as pd

from kinetic_rules.engine.orders import OrderStatus
from kinetic_rules.live.broker import Refused
from kinetic_rules.live.paper_account import KEEP_ENDED, FillRule, PaperOrder
from kinetic_rules.live.paper_fills import EPSILON, Level, Taken
from kinetic_rules.margin import liquidation_price

INSUFFICIENT_MARGIN = "Margin is insufficient."  # Binance's -2019, in its words
REDUCE_ONLY_REJECTED = "ReduceOnly Order is rejected."  # its -2022
MARGIN_MODE_LOCKED = "Margin type cannot be changed if there exists position."  # its -4048
DEFAULT_LEVERAGE = 20  # what Binance sets on a symbol nobody set
KEEP_CHARGES = 10_000  # funding charges kept in a saved account (the newest)


@dataclass
class MarginPosition:
    amount: float = 0.0  # base units, signed: negative is a short
    entry: float = 0.0  # average entry price
    margin: float = 0.0  # isolated: what the position holds; cross: 0 (the wallet backs it)
    since: int = 0  # ms when it was opened: funding times before it are not its own


@dataclass(frozen=True)
class FundingCharge:
    pair: str
    time: int  # the funding time, ms
    rate: float
    mark: float
    paid: float  # by the account: + paid, − received


@dataclass(frozen=True)
class Liquidation:
    pair: str
    time: int  # ms
    price: float  # the liquidation price (mark)
    amount: float  # signed position closed
    lost: float  # what the wallet lost: the margin that stood behind the position


@dataclass
class MarginAccount:
    wallet: float
    fee_rate: float
    maintenance: float
    default_mode: str = "isolated"  # "isolated" or "cross", for symbols not set
    modes: dict[str, str] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    positions: dict[str, MarginPosition] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)  # the latest mark price seen
    next_funding: dict[str, int] = field(default_factory=dict)  # pair -> ms, as last seen
    charges: list[FundingCharge] = field(default_factory=list)
    liquidations: list[Liquidation] = field(default_factory=list)
    orders: list[PaperOrder] = field(default_factory=list)
    held: float = 0.0  # margin and fees held by resting orders

    # -- saving --------------------------------------------------------------------------

    def dump(self) -> str:
        ended = {id(o) for o in [o for o in self.orders if o.status != "open"][-KEEP_ENDED:]}
        kept = [o for o in self.orders if o.status == "open" or id(o) in ended]
        data = {
            "wallet": self.wallet, "default_mode": self.default_mode, "modes": self.modes,
            "leverage": self.leverage, "marks": self.marks, "next_funding": self.next_funding,
            "positions": {pair: asdict(p) for pair, p in self.positions.items()},
            "charges": [asdict(c) for c in self.charges[-KEEP_CHARGES:]],
            "liquidations": [asdict(x) for x in self.liquidations],
            "orders": [o.to_json() for o in kept], "held": self.held,
        }  # fmt: skip
        return json.dumps(data)

    @classmethod
    def load(cls, text: str, fee_rate: float, maintenance: float) -> MarginAccount:
        data = json.loads(text)
        return cls(
            data["wallet"], fee_rate, maintenance, data["default_mode"], data["modes"],
            data["leverage"],
            {pair: MarginPosition(**p) for pair, p in data["positions"].items()},
            data["marks"], data["next_funding"],
            [FundingCharge(**c) for c in data["charges"]],
            [Liquidation(**x) for x in data["liquidations"]],
            [PaperOrder.from_json(o) for o in data["orders"]], data["held"],
        )  # fmt: skip

    # -- reading -------------------------------------------------------------------------

    def find(self, client_id: str, pair: str) -> PaperOrder | None:
        for order in reversed(self.orders):
            if order.request.client_id == client_id and order.request.pair == pair:
                return order
        return None

    def resting(self, pair: str | None = None) -> list[PaperOrder]:
        return [o for o in self.orders if o.status == "open" and pair in (None, o.request.pair)]

    def position(self, pair: str) -> MarginPosition:
        return self.positions.get(pair) or MarginPosition()

    def held_pairs(self) -> list[str]:
        return sorted(pair for pair, p in self.positions.items() if abs(p.amount) > EPSILON)

    def mode(self, pair: str) -> str:
        return self.modes.get(pair, self.default_mode)

    def leverage_of(self, pair: str) -> int:
        return self.leverage.get(pair, DEFAULT_LEVERAGE)

    def unrealized(self, pair: str) -> float:
        position = self.position(pair)
        mark = self.marks.get(pair, position.entry)
        return position.amount * (mark - position.entry)

    def equity(self) -> float:
        """The wallet plus every position's unrealized profit at the mark price."""
        return self.wallet + sum(self.unrealized(pair) for pair in self.positions)

    def available(self) -> float:
        """What new orders may use: the wallet less what positions and resting orders hold."""
        return self.wallet - self.held - sum(self._used(pair) for pair in self.positions)

    def _used(self, pair: str) -> float:
        position = self.position(pair)
        if self.mode(pair) == "isolated":
            return position.margin
        initial = abs(position.amount) * position.entry / self.leverage_of(pair)
        return initial - self.unrealized(pair)

    def backing(self, pair: str) -> float:
        """The margin standing behind a position: its own (isolated), or the wallet's free
        balance with this position's unrealized profit set aside (cross)."""
        if self.mode(pair) == "isolated":
            return self.position(pair).margin
        return self.available() + self._used(pair)

    def liquidation_price(self, pair: str) -> float | None:
        """Where the mark price liquidates the position (margin.py's model on its backing)."""
        position = self.position(pair)
        size, backing = abs(position.amount), self.backing(pair)
        if size <= EPSILON:
            return None
        sign = 1.0 if position.amount > 0 else -1.0
        if backing <= 0:
            return position.entry  # nothing behind it: any adverse move liquidates
        return liquidation_price(position.entry, size * position.entry / backing,
                                 self.maintenance, sign)  # fmt: skip

    # -- orders --------------------------------------------------------------------------

    def reserve(self, order: PaperOrder, price: float) -> None:
        """Hold what an order placed at `price` needs, or refuse it as the exchange would."""
        request, pair = order.request, order.request.pair
        held = self.position(pair).amount
        if not request.opening:
            if not _reduces(held, order.buying):
                raise Refused(f"{REDUCE_ONLY_REJECTED} (paper: there is no position it reduces)")
            if request.amount > abs(held) + EPSILON:
                raise Refused(
                    f"{REDUCE_ONLY_REJECTED} (paper: {request.amount:g} would flip the "
                    f"position of {abs(held):g})"
                )
            return
        needed = self._margin_for(order, request.amount, price)
        free = self.available()
        if needed > free + EPSILON:
            raise Refused(
                f"{INSUFFICIENT_MARGIN} (paper: needs {needed:.8g} {order.quote}, {free:.8g} "
                "available)",
                insufficient=True,
            )
        self.held += needed
        order.held = needed

    def _margin_for(self, order: PaperOrder, amount: float, price: float) -> float:
        """Initial margin and fee of what an order adds to the position (netting first)."""
        held = self.position(order.request.pair).amount
        adds = amount - (abs(held) if _reduces(held, order.buying) else 0.0)
        if adds <= 0:
            return 0.0
        return adds * price / self.leverage_of(order.request.pair) + adds * price * self.fee_rate

    def reducible(self, order: PaperOrder) -> float:
        """What a reduce-only order may still fill: never more than the position holds."""
        held = self.position(order.request.pair).amount
        return min(order.remaining, abs(held)) if _reduces(held, order.buying) else 0.0

    def affordable(self, order: PaperOrder, levels: list[Level], rule: FillRule) -> float:
        """How much of what an order still wants the account allows, at this book."""
        if not order.request.opening:
            return self.reducible(order)
        amount = order.remaining
        trial = rule([list(level) for level in levels], amount)
        if trial.amount <= EPSILON:
            return amount
        due = self._margin_for(order, trial.amount, trial.average)
        budget = order.held + self.available()
        return amount * budget / due if due > budget + EPSILON else amount

    def end(self, order: PaperOrder, status: OrderStatus, when: pd.Timestamp) -> None:
        """Cancel or expire an order: the margin it held is free again."""
        order.status, order.updated = status, when
        self.held -= order.held
        order.held = 0.0

    def book(self, order: PaperOrder, taken: Taken, when: pd.Timestamp) -> bool:
        """Book one fill: the position, realized profit, fee, and the order's totals."""
        if taken.amount <= EPSILON:
            return False
        last_part = taken.amount >= order.remaining - EPSILON
        used = order.held if last_part else order.held * taken.amount / order.remaining
        self.held -= used
        order.held -= used
        fee = taken.cost * self.fee_rate
        signed = taken.amount if order.buying else -taken.amount
        self.wallet += self._trade(order.request.pair, signed, taken.average, when) - fee
        order.record_fill(taken, fee, when, last_part)
        if not last_part and not order.request.opening and self.reducible(order) <= EPSILON:
            self.end(order, "expired", when)  # the position is closed: nothing left to reduce
        return True

    def _trade(self, pair: str, signed: float, price: float, when: pd.Timestamp) -> float:
        """Change the position by `signed` at `price`; the profit this realizes."""
        position = self.positions.setdefault(pair, MarginPosition())
        realized = 0.0
        if position.amount and (position.amount > 0) != (signed > 0):  # reduces, maybe flips
            closed = min(abs(signed), abs(position.amount))
            sign = 1.0 if position.amount > 0 else -1.0
            realized = sign * closed * (price - position.entry)
            position.margin -= position.margin * closed / abs(position.amount)
            position.amount -= sign * closed
            signed += sign * closed
            if abs(position.amount) <= EPSILON:
                position.amount = position.entry = position.margin = 0.0
        if abs(signed) > EPSILON:  # opens or adds
            if abs(position.amount) <= EPSILON:
                position.since = int(when.value // 1_000_000)
            total = position.amount + signed
            position.entry = (position.entry * abs(position.amount) + price * abs(signed)) / abs(
                total
            )
            position.amount = total
            if self.mode(pair) == "isolated":
                position.margin += abs(signed) * price / self.leverage_of(pair)
        return realized

    # -- funding and liquidation ---------------------------------------------------------

    def fund(self, pair: str, time: int, rate: float, mark: float) -> FundingCharge | None:
        """Settle one funding time: a position held then pays (or receives) its funding."""
        position = self.position(pair)
        if abs(position.amount) <= EPSILON or position.since > time:
            return None
        if any(c.pair == pair and c.time == time for c in self.charges[-64:]):
            return None  # settled already (a look repeated after a restart)
        charge = FundingCharge(pair, time, rate, mark, position.amount * mark * rate)
        self.wallet -= charge.paid
        self.charges.append(charge)
        return charge

    def funding_paid(self, pair: str, since: int, until: int | None) -> float:
        return sum(
            c.paid
            for c in self.charges
            if c.pair == pair and c.time >= since and (until is None or c.time <= until)
        )

    def liquidation_due(self, pair: str) -> float | None:
        """The liquidation price if the latest mark price has reached it, else None."""
        price, mark = self.liquidation_price(pair), self.marks.get(pair)
        if price is None or mark is None:
            return None
        long = self.position(pair).amount > 0
        return price if (mark <= price if long else mark >= price) else None

    def liquidate(self, pair: str, price: float, when: pd.Timestamp) -> Liquidation:
        """The exchange closes the position at its liquidation price and keeps the margin
        behind it; the symbol's resting orders are canceled."""
        position = self.position(pair)
        lost = self.backing(pair)
        record = Liquidation(pair, int(when.value // 1_000_000), price, position.amount, lost)
        self.wallet -= lost
        self.positions[pair] = MarginPosition()
        for order in self.resting(pair):
            self.end(order, "canceled", when)
        self.liquidations.append(record)
        return record


def _reduces(amount: float, buying: bool) -> bool:
    return amount < -EPSILON if buying else amount > EPSILON


def margin_mode_change(account: MarginAccount, pair: str, mode: str) -> str | None:
    """Set a symbol's margin mode; the exchange's reason when it cannot change now."""
    if account.mode(pair) == mode:
        return None
    if abs(account.position(pair).amount) > EPSILON or account.resting(pair):
        return MARGIN_MODE_LOCKED
    account.modes[pair] = mode
    return None
