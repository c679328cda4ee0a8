"""The paper broker's simulated account: balances, funds held by resting orders, and the
bookkeeping of each fill. It knows nothing of the exchange; the broker feeds it fills.

Like the exchange, the account holds funds while an order rests — a buy holds its cost
plus the fee in the quote currency, a sell holds the coins — and gives back what an
order did not use when it fills, is canceled or expires. Fees are charged in the
quote currency on every fill, as the backtest charges them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from kinetic_rules.engine.orders import OrderState, OrderStatus
from kinetic_rules.live.broker import OrderRequest, Refused
from kinetic_rules.live.paper_fills import EPSILON, Level, Taken

INSUFFICIENT = "Account has insufficient balance for requested action."  # the exchange's words

FillRule = Callable[[list[Level], float], Taken]  # takes from one side of the book
KEEP_ENDED = 1000  # orders that ended, kept in a saved account (the newest), for `fetch`


@dataclass
class PaperOrder:
    request: OrderRequest  # as placed, its amount cut to the market's precision
    exchange_id: str
    base: str
    quote: str
    buying: bool
    limit: float | None  # limit price (limit orders)
    stop: float | None  # trigger price (stop orders)
    created: pd.Timestamp
    status: OrderStatus = "open"
    filled: float = 0.0
    cost: float = 0.0  # quote value of the fills, fees excluded
    fee: float = 0.0
    held: float = 0.0  # funds still held for the unfilled part (quote: buys, base: sells)
    triggered: bool = False
    updated: pd.Timestamp | None = None
    log: list[dict[str, object]] = field(default_factory=list)  # fills and triggers

    @property
    def remaining(self) -> float:
        return self.request.amount - self.filled

    def record_fill(self, taken: Taken, fee: float, when: pd.Timestamp, last_part: bool) -> None:
        """The order's own totals and log after a fill; the last part closes it."""
        self.filled += taken.amount
        self.cost += taken.cost
        self.fee += fee
        self.updated = when
        self.log.append(
            {"time": when.isoformat(), "price": taken.average, "amount": taken.amount, "fee": fee}
        )
        if last_part:
            self.filled = self.request.amount  # no float dust left to fill
            self.status = "closed"

    @property
    def held_in(self) -> str:
        return self.quote if self.buying else self.base

    @property
    def is_market(self) -> bool:
        return self.limit is None and self.stop is None

    def state(self) -> OrderState:
        """The order as the Broker protocol reports it: a fresh object every time."""
        request = self.request
        return OrderState(
            client_id=request.client_id,
            exchange_id=self.exchange_id,
            pair=request.pair,
            status=self.status,
            kind=request.kind,
            amount=request.amount,
            filled=self.filled,
            average=self.cost / self.filled if self.filled > EPSILON else None,
            fee=self.fee,
            updated=self.updated or self.created,
            raw={"paper": True, "triggered": self.triggered, "log": list(self.log)},
        )

    def to_json(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["request"] = dataclasses.asdict(self.request)
        fields["created"] = self.created.isoformat()
        fields["updated"] = self.updated.isoformat() if self.updated is not None else None
        return fields

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PaperOrder:
        updated = data.get("updated")
        return cls(
            **{
                **data,
                "request": OrderRequest(**data["request"]),
                "created": pd.Timestamp(data["created"]),
                "updated": pd.Timestamp(updated) if updated else None,
            }
        )


class PaperAccount:
    def __init__(self, balances: dict[str, float], fee_rate: float) -> None:
        self.fee_rate = fee_rate
        self._free = dict(balances)
        self._held: dict[str, float] = {}
        self.orders: list[PaperOrder] = []  # every order accepted, in placement order

    def dump(self) -> str:
        """The account as text: balances, resting orders and the newest ended ones."""
        ended = {id(o) for o in [o for o in self.orders if o.status != "open"][-KEEP_ENDED:]}
        kept = [o for o in self.orders if o.status == "open" or id(o) in ended]
        orders = [o.to_json() for o in kept]
        return json.dumps({"free": self._free, "held": self._held, "orders": orders})

    @classmethod
    def load(cls, text: str, fee_rate: float) -> PaperAccount:
        data = json.loads(text)
        account = cls(data["free"], fee_rate)
        account._held = dict(data["held"])
        account.orders = [PaperOrder.from_json(o) for o in data["orders"]]
        return account

    def free(self, asset: str) -> float:
        return self._free.get(asset, 0.0)

    def balances(self) -> dict[str, tuple[float, float]]:
        """Every asset's (free, held by resting orders)."""
        assets = sorted(set(self._free) | set(self._held))
        return {a: (self._free.get(a, 0.0), self._held.get(a, 0.0)) for a in assets}

    def find(self, client_id: str, pair: str) -> PaperOrder | None:
        for order in reversed(self.orders):  # a client id may be reused once its order ended
            if order.request.client_id == client_id and order.request.pair == pair:
                return order
        return None

    def resting(self, pair: str | None = None) -> list[PaperOrder]:
        return [o for o in self.orders if o.status == "open" and pair in (None, o.request.pair)]

    def reserve(self, order: PaperOrder, price: float) -> None:
        """Hold what an order placed at `price` needs: a buy its cost and fee, a sell its coins."""
        amount = order.request.amount
        self.hold(order, amount * price * (1 + self.fee_rate) if order.buying else amount)

    def hold(self, order: PaperOrder, amount: float) -> None:
        """Set funds aside for an order, or refuse it as the exchange would."""
        asset = order.held_in
        free = self.free(asset)
        if amount > free + EPSILON:
            raise Refused(
                f"{INSUFFICIENT} (paper: needs {amount:.8g} {asset}, {free:.8g} free)",
                insufficient=True,
            )
        self._free[asset] = free - amount
        self._held[asset] = self._held.get(asset, 0.0) + amount
        order.held = amount

    def end(self, order: PaperOrder, status: OrderStatus, when: pd.Timestamp) -> None:
        """Cancel or expire an order: whatever it still held is free again."""
        order.status, order.updated = status, when
        self._unhold(order, order.held)

    def affordable(self, order: PaperOrder, levels: list[Level], rule: FillRule) -> float:
        """How much of what an order still wants the account can pay for, at this book."""
        amount = order.remaining
        if not order.buying:
            return amount
        budget = order.held + self.free(order.quote)
        trial = rule([list(level) for level in levels], amount)
        due = trial.cost * (1 + self.fee_rate)
        return amount * budget / due if due > budget + EPSILON else amount

    def book(self, order: PaperOrder, taken: Taken, when: pd.Timestamp) -> bool:
        """Book one fill: balances, fee, the order's totals and status. False if empty."""
        if taken.amount <= EPSILON:
            return False
        fee = taken.cost * self.fee_rate
        last_part = taken.amount >= order.remaining - EPSILON
        used = order.held if last_part else order.held * taken.amount / order.remaining
        self._unhold(order, used, spent=True)
        if order.buying:
            self._add(order.quote, used - taken.cost - fee)
            self._add(order.base, taken.amount)
        else:
            self._add(order.base, used - taken.amount)
            self._add(order.quote, taken.cost - fee)
        order.record_fill(taken, fee, when, last_part)
        return True

    def _unhold(self, order: PaperOrder, amount: float, *, spent: bool = False) -> None:
        asset = order.held_in
        self._held[asset] = self._held.get(asset, 0.0) - amount
        if not spent:
            self._add(asset, amount)
        order.held -= amount

    def _add(self, asset: str, amount: float) -> None:
        self._free[asset] = self._free.get(asset, 0.0) + amount
