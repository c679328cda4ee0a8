"""Stake sizing: the Kelly criterion from closed trades (seed 000, §6), alone or as a cap."""

from __future__ import annotations

from collections.abc import Sequence

from kinetic_rules.spec.models import Kelly


def win_rate(profits: Sequence[float]) -> float:
    """Share of trades that made money after fees; 0 for no trades."""
    return len([p for p in profits if p > 0]) / len(profits) if profits else 0.0


def kelly_fraction(rate: float, reward_risk: float) -> float:
    """win_rate − (1 − win_rate) / reward_risk: the bet that maximises long-run growth."""
    return rate - (1.0 - rate) / reward_risk


def kelly_stake(kelly: Kelly, profits: Sequence[float]) -> float:
    """Fraction of equity to stake, from closed trades, oldest first (the pair's own, or
    every trade of the strategy: `kelly.per`).

    Fewer than `min_trades` closed trades: the default. Otherwise the Kelly fraction of
    the last `lookback` trades, clamped to [least, most] — a losing pair still gets the
    least stake, so it can prove itself again.
    """
    if len(profits) < kelly.min_trades:
        return kelly.default
    recent = _last(profits, kelly.lookback)
    least, most = kelly.clamp
    return min(max(kelly_fraction(win_rate(recent), kelly.reward_risk), least), most)


def kelly_cap(kelly: Kelly, stake: float, profits: Sequence[float]) -> float:
    """A stake fraction from the strategy's own rule, capped by Kelly (seed 004).

    The cap applies only once at least `min_trades` trades have closed and the full Kelly
    fraction of the last `lookback` of them is above zero: a short or losing history says
    too little to size by, so the stake rule stands alone. `default` and `clamp` play no
    part — the stake rule is the primary size; Kelly only ever lowers it.
    """
    if len(profits) < kelly.min_trades:
        return stake
    recent = _last(profits, kelly.lookback)
    full = kelly_fraction(win_rate(recent), kelly.reward_risk)
    return min(stake, full) if full > 0 else stake


def _last(profits: Sequence[float], count: int) -> Sequence[float]:
    """The last `count` profits (a list is sliced, not copied whole: it grows all run)."""
    return profits[-count:] if isinstance(profits, list) else list(profits)[-count:]
