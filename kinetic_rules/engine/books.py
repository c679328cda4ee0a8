"""The portfolio's history that later decisions read: what a restart must carry over.

A live bot that is stopped and started again rebuilds its open positions from its
orders, but the rules also read what happened before: Kelly sizes from closed profits
(each pair's, or the whole strategy's in settlement order), cooldowns from the last exit
per pair and per entry tag, the daily loss limit from today's closed trades. Plain data,
so the trade store can keep it (persist/book.py) and the portfolio take it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

# A settled trade's profit for today's values: (settled at, exited at, profit).
ClosedToday = tuple[pd.Timestamp, pd.Timestamp, float]


@dataclass
class PortfolioBooks:
    """Everything the portfolio has learned from trades that are over, and its counters."""

    realized: float = 0.0
    closed_profits: dict[str, list[float]] = field(default_factory=dict)  # per pair (Kelly)
    all_profits: list[float] = field(default_factory=list)  # every pair's (Kelly per strategy)
    last_exit: dict[str, pd.Timestamp] = field(default_factory=dict)  # pair cooldown
    tag_exit: dict[tuple[str, str], pd.Timestamp] = field(default_factory=dict)  # (pair, tag)
    closed_today: list[ClosedToday] = field(default_factory=list)  # today's profit, its low
    next_id: int = 1  # the next position's id
    next_trade_id: int = 1  # the next trade's id: ids never repeat across a restart
