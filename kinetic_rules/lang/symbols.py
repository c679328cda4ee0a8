"""The vocabulary of resolution: kinds of values, the symbol table, small word helpers.

Plain data and pure functions, kept apart from the Resolver so that each reads on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kinetic_rules.lang import ast
from kinetic_rules.lang.names import Scope
from kinetic_rules.models.settings import ModelSettings

NUMBER, BOOL, STRING, LIST, DURATION = "number", "bool", "string", "list", "duration"


@dataclass(frozen=True)
class Typed:
    node: ast.Node
    kind: str


@dataclass
class Definition:
    name: str
    kind: str  # what it must be: number (indicators) or bool (conditions)
    tree: ast.Node | None  # None: it did not parse (already reported)


@dataclass
class ModelSource:
    """A model as written: its parsed features and label (None: did not parse), and how it
    is trained, the horizon already in candles of the base timeframe."""

    name: str
    features: list[tuple[str, ast.Node | None]]
    label: ast.Node | None
    settings: ModelSettings


@dataclass
class Symbols:
    params: dict[str, float | int | bool | str]
    definitions: dict[str, Definition]
    regime_classes: tuple[str, ...] = ()
    regime_tables: frozenset[str] = frozenset()
    informative_timeframes: frozenset[str] | None = None
    informative_pairs: frozenset[str] | None = None
    declared_params: frozenset[str] = frozenset()  # including those whose value was rejected
    used: set[str] = field(default_factory=set)
    models: dict[str, ModelSource] = field(default_factory=dict)


def is_regime(node: ast.Node) -> bool:
    """`regime`, or `regime[n]`: the series whose values are regime class names."""
    if isinstance(node, ast.History):
        node = node.operand
    return isinstance(node, ast.Name) and node.id == "regime"


ELEMENTWISE = {"abs", "min", "max", "clamp", "log", "sqrt", "step"}


def fold(op: str, a: float, b: float) -> float | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/" and b != 0:
        return a / b
    return None


def compare_words(first: ast.Node, pairs: tuple[tuple[str, ast.Node], ...]) -> bool:
    left = first
    for op, right in pairs:
        assert isinstance(left, ast.String) and isinstance(right, ast.String)
        if (left.value == right.value) != (op == "=="):
            return False
        left = right
    return True


def kind_word(kind: str) -> str:
    return {
        NUMBER: "number",
        BOOL: "condition (true/false)",
        STRING: "word",
        LIST: "list",
        DURATION: "duration",
    }.get(kind, kind)


def scope_words(scope: Scope) -> str:
    places = []
    if scope & Scope.TRADE:
        places.append("while a trade is open (exit, stoploss, take_profit)")
    if scope & Scope.SIZING:
        places.append("when sizing a trade (sizing)")
    if scope & Scope.LIVE:
        places.append("in live trading, for the traded pair on the base timeframe")
    if scope & Scope.PORTFOLIO:
        places.append("where the portfolio decides (entry conditions, protections)")
    elif scope & Scope.ENTRY:
        places.append("when an entry is decided (entry conditions)")
    return " or ".join(places)
