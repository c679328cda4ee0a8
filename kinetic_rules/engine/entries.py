"""What the portfolio asks of an entry it considers at a close, beyond slots and
cooldowns: the stake it would get, and whether a rule reading the portfolio (an entry
condition, or a protection that blocks entries or limits open trades) refuses it. Both
are functions of the portfolio's books at that close (engine/portfolio_values.py), shared
by the backtest and the live runtime through engine/portfolio.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.trade_eval import evaluate_at, evaluate_points
from kinetic_rules.engine.model import Side
from kinetic_rules.engine.portfolio_values import Ledger, PortfolioRules, decision_env
from kinetic_rules.engine.positions import PairData, initial_stop
from kinetic_rules.engine.sizing import kelly_cap, kelly_stake
from kinetic_rules.lang import ast
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
    known: float | None = None,
) -> float:
    """The stake of an entry decided at candle `signal`: the sizing's share of `equity`,
    within what the positions have not `committed`; 0 when nothing is left to stake.
    `history`: the closed profits Kelly sizing reads; `known`: the stake rule's value
    there, when `stake_rule_values` gave it."""
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
        if known is not None:
            value: Any = known
        else:
            env = _SizingValues(plan, data, signal, entry_price, sign, equity)
            value = evaluate_at(plan, rule.node, data.signals, signal, env)
        fraction = float(value) if np.isfinite(value) else 0.0
        fraction = kelly_cap(kelly, fraction, history) if kelly is not None else fraction
    if sizing.max_stake is not None:
        fraction = min(fraction, sizing.max_stake)
    return max(0.0, min(fraction * equity, room))


# What a stake rule may read that only the portfolio knows at its decision.
_DECIDED = frozenset({"equity", "stop"})


def stake_rule_values(
    plan: Plan, data: PairData, side: Side, signals: np.ndarray
) -> dict[int, float] | None:
    """The stake rule's value at each of these candles, for entries on `side` priced at
    their close, in one evaluation: what `entry_stake` computes there one decision at a
    time, to the bit. None when the rule reads the equity or the stop (known only at the
    decision), or there is no rule."""
    rule = plan.strategy.stake
    if rule is None or any(isinstance(n, ast.Name) and n.id in _DECIDED for n in rule.node.walk()):
        return None
    sign = 1.0 if side == "long" else -1.0
    prices = np.asarray(data.prices["close"][signals], dtype=np.float64)  # as `float` makes it
    env = {"entry_price": prices, "side": sign}
    values = evaluate_points(plan, rule.node, data.signals, signals, env)
    return dict(zip(signals.tolist(), values.tolist(), strict=True))


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
