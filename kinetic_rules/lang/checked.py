"""What the checker produces: checked rules and the checked strategy, as plain data.

The compiler, the engine and the reports read these; keeping them apart from the
checker means none of those stages imports the parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kinetic_rules.errors import Diagnostic, Span
from kinetic_rules.lang import ast
from kinetic_rules.spec.models import Strategy

Sides = dict[str, dict[str, "Rule"]]
ParamValue = float | int | bool | str


@dataclass(frozen=True)
class Rule:
    """One checked expression: its resolved tree, its kind, and where it was written."""

    label: str  # e.g. entry.long.momentum
    node: ast.Node
    kind: str
    span: Span


@dataclass(frozen=True)
class ScannerRule:
    name: str
    top: int | None
    rule: Rule
    live_only: bool


@dataclass(frozen=True)
class TrailRule:
    activate: Rule
    level: Rule


@dataclass
class CheckedStrategy:
    spec: Strategy
    params: dict[str, ParamValue]
    indicators: dict[str, Rule] = field(default_factory=dict)
    conditions: dict[str, Rule] = field(default_factory=dict)
    scanner: list[ScannerRule] = field(default_factory=list)
    regime: list[tuple[str, Rule]] = field(default_factory=list)
    protections: dict[str, Rule] = field(default_factory=dict)
    entry: Sides = field(default_factory=dict)
    tags: dict[str, Rule] = field(default_factory=dict)
    priority: Rule | None = None
    exit: Sides = field(default_factory=dict)
    stop_initial: Rule | None = None
    trailing: dict[str, TrailRule] = field(default_factory=dict)
    take_profit: dict[str, Rule] = field(default_factory=dict)
    stake: Rule | None = None
    leverage: Rule | None = None
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def timeframe(self) -> str:
        return self.spec.timeframe

    def rules(self) -> list[Rule]:
        """Every checked expression, in file order of sections."""
        found = [*self.indicators.values(), *self.conditions.values()]
        found += [s.rule for s in self.scanner] + [r for _, r in self.regime]
        found += list(self.protections.values())
        for side in self.entry.values():
            found += side.values()
        found += list(self.tags.values())
        found += [self.priority] if self.priority else []
        for side in self.exit.values():
            found += side.values()
        found += [self.stop_initial] if self.stop_initial else []
        for trail in self.trailing.values():
            found += [trail.activate, trail.level]
        found += list(self.take_profit.values())
        found += [r for r in (self.stake, self.leverage) if r]
        return found
