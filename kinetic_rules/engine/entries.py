"""What the portfolio asks of an entry it considers at a close, beyond slots and
cooldowns: the stake it would get, and whether a rule reading the portfolio (an entry
condition, or a protection that blocks entries or limits open trades) refuses it. Both
are functions of the portfolio's books at that close (engine/portfolio_values.py), shared
by the backtest and the live runtime through engine/portfolio.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.trade_eval import evaluate_at
from kinetic_rules.engine.model import Side
from kinetic_rules.engine.portfolio_values import Ledger, PortfolioRules, decision_env
from kinetic_rules.engine.positions import PairData, initial_stop
from kinetic_rules.engine.sizing import kelly_cap, kelly_stake
from kinetic_rules.lang.checked import Rule


def entry_stake(
    plan: Plan,
    data: PairData,
    signal: int,
    entry_price: float,
    sign: float,
    equity: float,
    committed: float,
    history: Sequence[float],
) -> float:
    """The stake of an entry decided at candle `signal`: the sizing's share of `equity`,
    within what the positions have not `committed`; 0 when nothing is left to stake.
    `history`: the closed profits Kelly sizing reads."""
    sizing = plan.strategy.spec.sizing
    room = equity - committed
    if room <= 0:  # nothing left to stake, whatever the rule says
        return 0.0
    kelly = sizing.kelly
    rule = plan.strategy.stake
    if rule is None:
        assert kelly is not None
        fraction = kelly_stake(kelly, history)
    else:
        env = _SizingValues(plan, data, signal, entry_price, sign, equity)
        value = evaluate_at(plan, rule.node, data.signals, signal, env)
        fraction = float(value) if np.isfinite(value) else 0.0
        fraction = kelly_cap(kelly, fraction, history) if kelly is not None else fraction
    if sizing.max_stake is not None:
        fraction = min(fraction, sizing.max_stake)
    return max(0.0, min(fraction * equity, room))


class _SizingValues(dict[str, float]):
    """The names a stake rule reads. The initial stop is made only when the rule reads it:
    most stake rules do not, and a backtest sizes an entry at most decisions."""

    def __init__(
        self,
        plan: Plan,
        data: PairData,
        signal: int,
        entry_price: float,
        sign: float,
        equity: float,
    ) -> None:
        super().__init__(entry_price=entry_price, side=sign, equity=equity)
        self._stop = (plan, data, signal, entry_price, sign)

    def __missing__(self, name: str) -> float:
        if name != "stop":
            raise KeyError(name)
        value = self[name] = initial_stop(*self._stop)
        return value


def portfolio_refuses(
    plan: Plan,
    rules: PortfolioRules,
    ledger: Ledger,
    data: PairData,
    side: Side,
    local: int,
    decided_at: pd.Timestamp,
) -> bool:
    """Do the entry conditions or protections that read the portfolio refuse this entry?"""
    entry = rules.entry.get(side, [])
    limits = [
        (rule, protection)
        for _, rule, protection in rules.protections
        if protection.block_entries or protection.max_open_trades is not None
    ]
    if not entry and not limits:
        return False
    env = decision_env(ledger, data, decided_at)

    def holds(rule: Rule) -> bool:
        return bool(evaluate_at(plan, rule.node, data.signals, local, env))

    for rule, protection in limits:
        if holds(rule) and (
            protection.block_entries or len(ledger.slots) >= (protection.max_open_trades or 0)
        ):
            return True
    return not all(holds(rule) for rule in entry)
