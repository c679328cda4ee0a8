"""The fill model: how a decision becomes a price. Conservative by design, and written
down in plain sentences that every backtest report repeats (see `describe`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from kinetic_rules.compile.plan import Plan
from kinetic_rules.engine.model import Side
from kinetic_rules.timeframes import timeframe_seconds


@dataclass(frozen=True)
class FillModel:
    fee: float  # fraction of notional, charged on every fill
    slippage: float  # fraction of price, always against us
    entry_limit: bool  # entries are limit orders at the signal candle's close
    exit_limit: bool  # signal exits are limit orders at the signal candle's close
    entry_timeout: int  # candles an unfilled entry order stays open
    exit_timeout: int  # candles an unfilled exit order stays open before going market
    maintenance_margin: float | None = None  # futures: trades can be liquidated; spot: None
    stops_on_mark: bool = False  # futures: stops trigger on the mark price (where it is stored)

    def adverse(self, price: float, side: Side, buying: bool) -> float:
        """Slippage always costs: buying fills higher, selling lower."""
        up = buying if side == "long" else not buying
        return price * (1 + self.slippage) if up else price * (1 - self.slippage)

    def fee_on(self, price: float, amount: float) -> float:
        return abs(price * amount) * self.fee

    def describe(self) -> tuple[str, ...]:
        entry = (
            "Entries are limit orders at the signal candle's close, placed at the next open; "
            f"they fill only when the price trades through the limit within {self.entry_timeout} "
            "candle(s), at the limit or at a better open, otherwise they are cancelled."
            if self.entry_limit
            else "Entries are market orders filled at the next candle's open."
        )
        exit_ = (
            "Signal exits are limit orders at the signal candle's close; they fill when the "
            f"price trades through within {self.exit_timeout} candle(s), otherwise the position "
            "is closed at market at the next open."
            if self.exit_limit
            else "Signal exits are market orders filled at the next candle's open."
        )
        margin = (
            ()
            if self.maintenance_margin is None
            else (
                "Futures use isolated margin: a trade's margin is its stake, and it is "
                "liquidated when its margin balance falls to the maintenance margin "
                f"({self.maintenance_margin:.2%} of its value). A candle reaching the "
                "liquidation price before the stop closes the trade there, losing its whole "
                "margin; a candle opening beyond it, too. A stop at or beyond the liquidation "
                "price never fires.",
            )
        )
        return (
            "Signals are decided on closed candles and acted on at the next candle's open.",
            entry,
            exit_,
            "Stops are checked against each candle's high and low, including the entry candle; "
            "a stop fills at its price, or at the open when the candle gaps through it.",
            "Trailing stops move only after a candle closes, and never loosen.",
            "Take-profits are decided on closed candles and filled at the next open.",
            f"Slippage of {self.slippage:.4%} is applied against every fill; a fee of "
            f"{self.fee:.4%} of the traded value is charged on every fill (entry and exit).",
            "When more pairs signal than slots are free, higher `entry.priority` goes first, "
            "then pair names in alphabetical order.",
            "Trades still open when the data ends are closed at the last close, "
            "labelled end_of_data.",
            "A slot is freed by an exit decided or filled by the candle close at which a new "
            "entry is decided.",
            *margin,
        )


def fill_model(plan: Plan) -> FillModel:
    """The fill model a strategy file asks for: its fees, slippage, order types, timeouts."""
    spec = plan.strategy.spec
    candle = timeframe_seconds(plan.timeframe)
    return FillModel(
        fee=spec.backtest.fee,
        slippage=spec.backtest.slippage,
        entry_limit=spec.orders.entry == "limit",
        exit_limit=spec.orders.exit == "limit",
        entry_timeout=max(1, spec.orders.timeouts.entry // candle),
        exit_timeout=max(1, spec.orders.timeouts.exit // candle),
        maintenance_margin=spec.market.maintenance_margin
        if spec.market.type == "futures"
        else None,
        stops_on_mark=spec.market.type == "futures" and spec.orders.stop_trigger == "mark",
    )


EntryOutcome = (
    tuple[Literal["waiting"]]
    | tuple[Literal["expired"], int]
    | tuple[Literal["filled"], int, float]
)


def entry_fill(
    fills: FillModel, prices: dict[str, np.ndarray], signal: int, side: Side
) -> EntryOutcome:
    """The entry order decided at the close of `signal`, judged on the candles known so far."""
    opens, highs, lows, closes = (prices[k] for k in ("open", "high", "low", "close"))
    first, known = signal + 1, len(opens)
    if first >= known:
        return ("waiting",)
    if not fills.entry_limit:
        return ("filled", first, fills.adverse(float(opens[first]), side, buying=True))
    limit = float(closes[signal])
    last = first + fills.entry_timeout - 1
    for candle in range(first, min(known, last + 1)):
        through = lows[candle] < limit if side == "long" else highs[candle] > limit
        if through:
            better = opens[candle] < limit if side == "long" else opens[candle] > limit
            return ("filled", candle, float(opens[candle]) if better else limit)
    return ("expired", last) if last < known else ("waiting",)
