"""Stake sizing: the Kelly criterion from a pair's own closed trades (seed 000, §6)."""

from __future__ import annotations

from collections.abc import Sequence

from kinetic_rules.spec.models import Kelly


def win_rate(profits: Sequence[float]) -> float:
    """Share of trades that made money after fees; 0 for no trades."""
    return sum(p > 0 for p in profits) / len(profits) if profits else 0.0


def kelly_fraction(rate: float, reward_risk: float) -> float:
    """win_rate − (1 − win_rate) / reward_risk: the bet that maximises long-run growth."""
    return rate - (1.0 - rate) / reward_risk


def kelly_stake(kelly: Kelly, pair_profits: Sequence[float]) -> float:
    """Fraction of equity to stake, from the pair's closed trades, oldest first.

    Fewer than `min_trades` closed trades: the default. Otherwise the Kelly fraction of
    the last `lookback` trades, clamped to [least, most] — a losing pair still gets the
    least stake, so it can prove itself again.
    """
    if len(pair_profits) < kelly.min_trades:
        return kelly.default
    recent = list(pair_profits)[-kelly.lookback :]
    least, most = kelly.clamp
    return min(max(kelly_fraction(win_rate(recent), kelly.reward_risk), least), most)
