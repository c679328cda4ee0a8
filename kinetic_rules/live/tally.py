"""The session's closed-trade profit and its open trades, kept up as trades come and go.

The dashboard asks for both at every close (the equity curve, the open positions): a
long session must not walk its whole trade history each time. Trades only ever join
the portfolio's list, and a closed trade stays as it closed (its last fill and funding
come with its close, under the runtime's lock), so each trade is looked at while it is
open and once more when it closes.
"""

from __future__ import annotations

from kinetic_rules.engine.model import Trade


class TradeTally:
    """Reads a growing list of trades: what is open, and the profit of what closed."""

    def __init__(self) -> None:
        self.realized = 0.0  # closed trades' profit, in the stake currency
        self._open: list[Trade] = []  # in the list's order
        self._seen = 0  # trades of the list looked at so far

    def open_trades(self, trades: list[Trade]) -> list[Trade]:
        """The open trades of `trades` (the list this tally has read from the start),
        in its order; the ones closed since the last call count towards `realized`."""
        fresh = trades[self._seen :]
        self._seen = len(trades)
        still = []
        for trade in (*self._open, *fresh):
            if trade.exit_time is None:
                still.append(trade)
            else:
                self.realized += trade.profit
        self._open = still
        return list(still)
