"""What a study optimises and what it requires: metrics of the backtest report, by name.

A constraint is `METRIC OP NUMBER` (`max_drawdown < 15%`, `trades >= 30`), read by a tiny
tokenizer — never evaluated as code. A drawdown is compared by its size: `max_drawdown <
15%` means the account never fell 15% or more from a high.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kinetic_rules.backtest.metrics import Metrics
from kinetic_rules.errors import Diagnostic, Source, Span, StrategyError

Direction = Literal["maximize", "minimize"]

# name -> (direction when optimised, what it is). Every figure is a plain number.
METRICS: dict[str, tuple[Direction, str]] = {
    "sharpe": ("maximize", "Sharpe ratio of daily returns, annualised"),
    "sortino": ("maximize", "Sortino ratio of daily returns, annualised"),
    "calmar": ("maximize", "CAGR ÷ the size of the max drawdown"),
    "total_return": ("maximize", "final ÷ starting balance − 1"),
    "profit_total": ("maximize", "profit of closed trades, stake currency"),
    "cagr": ("maximize", "compound annual growth rate"),
    "expectancy": ("maximize", "mean profit per closed trade, stake currency"),
    "expectancy_ratio": ("maximize", "mean profit ratio per closed trade"),
    "profit_factor": ("maximize", "winners' profits ÷ losers' losses"),
    "win_rate": ("maximize", "wins ÷ closed trades"),
    "max_drawdown": ("minimize", "size of the largest fall from a high (0.15 is 15%)"),
    "max_drawdown_abs": ("minimize", "largest fall from a high, stake currency"),
    "exposure": ("minimize", "share of the time with a trade open"),
    "trades": ("maximize", "closed trades"),
    "fees": ("minimize", "every fee paid, stake currency"),
}
DEFAULT_OBJECTIVE = "sharpe"

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op><=|>=|<|>)"
    r"|(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?%?))"
)


def metric_values(metrics: Metrics) -> dict[str, float | None]:
    """Every searchable figure of one backtest; None where it does not exist (no trades)."""
    raw: dict[str, Any] = metrics.to_dict()
    values: dict[str, float | None] = {}
    for name in METRICS:
        value = raw.get(name)
        if name == "profit_factor" and metrics.profit_factor_infinite:
            value = math.inf
        if name == "max_drawdown" and value is not None:
            value = abs(float(value))
        values[name] = None if value is None else float(value)
    return values


IDLE_ZERO = ("sharpe", "sortino", "calmar")  # an account that never trades scores 0 on these


def objective_value(values: dict[str, float | None], name: str) -> float | None:
    """The objective of one trial. A trial that never traded has no ratio (its equity never
    moved); it scores 0 on the ratios, since nothing was risked and nothing earned."""
    value = values.get(name)
    if value is None and name in IDLE_ZERO and values.get("trades") == 0:
        return 0.0
    return value


def check_objective(name: str) -> Direction:
    if name not in METRICS:
        flag = Source("--objective", name)
        raise StrategyError([_unknown_metric(name, Span(flag, 0, len(name)))])
    return METRICS[name][0]


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    threshold: float
    text: str

    def holds(self, values: dict[str, float | None]) -> bool:
        """A figure that does not exist (no trades) never satisfies a constraint."""
        value = values.get(self.metric)
        if value is None or math.isnan(value):
            return False
        return _OPERATORS[self.op](value, self.threshold)

    def violation(self, values: dict[str, float | None]) -> float:
        """How far a trial is from meeting the constraint (≤ 0 when it does), for samplers
        that steer away from infeasible regions."""
        value = values.get(self.metric)
        if value is None or math.isnan(value):
            return 1.0
        if self.holds(values):
            return 0.0 if self.op in ("<=", ">=") else -1e-12
        gap = value - self.threshold if self.op in ("<", "<=") else self.threshold - value
        return max(gap, 1e-12)


def parse_constraint(text: str) -> Constraint:
    """`max_drawdown < 15%` → Constraint; a positioned error for anything else."""
    source = Source("--constraint", text)
    tokens: list[tuple[str, str, int]] = []
    at = 0
    while at < len(text.rstrip()):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            start = len(text) - len(text[at:].lstrip())
            raise _error(source, start, start + 1, f"unexpected '{text[start]}'")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind), match.start(kind)))
        at = match.end()
    kinds = [kind for kind, _, _ in tokens]
    if kinds != ["name", "op", "number"]:
        where = next(
            (i for i, k in enumerate(kinds) if i >= 3 or k != ("name", "op", "number")[i]),
            len(kinds),
        )
        start = tokens[where][2] if where < len(tokens) else len(text)
        raise _error(
            source,
            start,
            start + 1,
            "a constraint is METRIC OP NUMBER, e.g. max_drawdown < 15% or trades >= 30",
        )
    (_, name, name_at), (_, op, _), (_, number, number_at) = tokens
    if name not in METRICS:
        raise StrategyError([_unknown_metric(name, Span(source, name_at, name_at + len(name)))])
    threshold = float(number[:-1]) / 100.0 if number.endswith("%") else float(number)
    if name == "max_drawdown" and threshold < 0:
        raise _error(
            source,
            number_at,
            number_at + len(number),
            "a drawdown is compared by its size: write max_drawdown < 15%, not -15%",
        )
    return Constraint(name, op, threshold, text.strip())


def _error(source: Source, start: int, end: int, message: str) -> StrategyError:
    return StrategyError([Diagnostic("error", "constraint", message, Span(source, start, end))])


def _unknown_metric(name: str, span: Span) -> Diagnostic:
    near = difflib.get_close_matches(name, list(METRICS), n=1)
    hint = f"did you mean {near[0]}?" if near else "metrics: " + ", ".join(METRICS)
    return Diagnostic("error", "metric", f"no metric named {name}", span, hint)
