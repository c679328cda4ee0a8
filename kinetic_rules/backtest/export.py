"""What the rules saw, candle by candle: one table per pair of every named value and verdict.

The same table feeds `--export signals` (Parquet, one file per pair) and `explain`.
Columns are named by where the rule stands in the file (`entry.long.momentum`), so a
user can find each one in their strategy.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from kinetic_rules.compile.evaluate import PairSignals
from kinetic_rules.compile.plan import Plan
from kinetic_rules.data.atomic import atomic_write
from kinetic_rules.lang.checked import Rule


def named_rules(plan: Plan) -> list[Rule]:
    """Every rule whose value exists without a trade, in file order."""
    checked = plan.strategy
    rules = [*checked.indicators.values(), *checked.conditions.values()]
    rules += [r for _, r in checked.regime] + list(checked.protections.values())
    rules += [s.rule for s in checked.scanner if not s.live_only]
    for side in checked.entry.values():
        rules += side.values()
    for side in checked.exit.values():
        rules += [r for r in side.values() if plan.is_trade_free(r.node)]
    return [r for r in rules if r.node in plan.trade_free]


def signal_frame(plan: Plan, signals: PairSignals) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    for rule in named_rules(plan):
        columns[rule.label] = signals.values[rule.node]
    if signals.regime is not None:
        names = np.array([name for name, _ in plan.strategy.regime], dtype=object)
        columns["regime"] = names[signals.regime]
    for side, rules in plan.strategy.entry.items():
        if rules:  # conditions reading the portfolio are decided in its loop, not here
            market = {n: r for n, r in rules.items() if plan.is_trade_free(r.node)}
            columns[f"entry.{side}"] = signals.all_of(market)
    for side, rules in plan.strategy.exit.items():
        free = [r for r in rules.values() if plan.is_trade_free(r.node)]
        if free:
            verdict = np.zeros(len(signals.index), dtype=bool)
            for rule in free:
                verdict |= signals.values[rule.node]
            columns[f"exit.{side}"] = verdict
    frame = pd.DataFrame(columns, index=signals.index)
    frame.index.name = "date"
    return frame


def write_signals(plan: Plan, all_signals: Iterable[PairSignals], folder: Path) -> list[Path]:
    """One Parquet file per pair; given a generator, each pair's table is written and let
    go before the next pair is evaluated."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for signals in all_signals:
        frame = signal_frame(plan, signals)
        path = folder / f"signals-{signals.pair.replace('/', '_').replace(':', '_')}.parquet"
        atomic_write(path, frame.to_parquet)
        written.append(path)
    return written
