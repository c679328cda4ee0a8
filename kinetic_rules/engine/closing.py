"""The fills that close a trade: its path's planned fills, priced by the fill model and
sized as the exchange takes orders.

Without exchange rules each fill closes its share of the original amount. With them, a
take-profit's amount is truncated to the amount step, and one worth less than the
minimum order value is not sent (its share closes with the trade's next exit); the fill
that ends the trade closes all that is left.
"""

from __future__ import annotations

import pandas as pd

from kinetic_rules.engine.fills import FillModel
from kinetic_rules.engine.model import LIQUIDATION, Fill, Trade
from kinetic_rules.engine.moments import moment_at
from kinetic_rules.engine.paths import PlannedFill
from kinetic_rules.market_rules import MarketRules, tradable


def closing_fills(
    model: FillModel,
    planned: list[PlannedFill],
    index: pd.DatetimeIndex,
    trade: Trade,
    rules: MarketRules | None,
) -> tuple[list[Fill], int]:
    """The closing fills, and how many take-profits were too small to send."""
    fills: list[Fill] = []
    left, share_left, skipped = trade.amount, 1.0, 0
    for step in planned:
        share_left -= step.share
        price = step.price
        if step.market:
            price = model.adverse(price, trade.side, buying=False)
        size = trade.amount * step.share
        if rules is not None and share_left <= 1e-9:
            size = left
        elif rules is not None:
            size = tradable(rules, size, price)
            if size <= 0:
                skipped += 1
                continue
        share = step.share if rules is None or not trade.amount else size / trade.amount
        fills.append(_fill(model, step, index, trade, price, size, share))
        left -= size
    return fills, skipped


def _fill(
    model: FillModel,
    planned: PlannedFill,
    index: pd.DatetimeIndex,
    trade: Trade,
    price: float,
    size: float,
    share: float,
) -> Fill:
    fee = model.fee_on(price, size)
    if planned.reason == LIQUIDATION and trade.margin is not None:
        # The exchange keeps what is left of this share's margin: it is lost whole.
        sign = 1.0 if trade.side == "long" else -1.0
        lost = sign * (trade.entry_price - price) * size
        fee = max(0.0, trade.margin * share - lost)
    return Fill(moment_at(index, planned.index), price, size, fee, planned.reason)
