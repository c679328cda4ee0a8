"""The expression tree: small frozen dataclasses that carry their source span.

Spans take no part in equality or hashing, so two occurrences of `ema(close, 50)`
anywhere in a strategy are one key — that is how the compiler computes each
distinct series once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

from kinetic_rules.errors import NO_SPAN, Span
from kinetic_rules.models.settings import ModelSettings


@dataclass(frozen=True)
class Node:
    span: Span = field(default=NO_SPAN, compare=False, hash=False, repr=False, kw_only=True)

    def children(self) -> Iterator[Node]:
        """The node's sub-trees, in order (found once per node: evaluators ask at every
        candle, decision and trade)."""
        known: tuple[Node, ...] | None = self.__dict__.get("_children")
        if known is None:
            known = tuple(self._find_children())
            object.__setattr__(self, "_children", known)
        return iter(known)

    def _find_children(self) -> Iterator[Node]:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Node):
                yield value
            elif isinstance(value, tuple):
                for item in value:
                    if isinstance(item, Node):
                        yield item
                    elif isinstance(item, tuple):  # keyword arguments: (name, node)
                        yield from (v for v in item if isinstance(v, Node))

    def __getstate__(self) -> dict[str, object]:
        """A copy or pickle leaves the shape's number (see `shape`) and the found children
        behind."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_shape", "_children")}

    def walk(self) -> Iterator[Node]:
        """Every node of the tree, parents before children."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(list(node.children())))


@dataclass(frozen=True)
class Number(Node):
    value: float


@dataclass(frozen=True)
class Percent(Node):
    """`2.5%`: written as 2.5, worth 0.025."""

    written: float

    @property
    def value(self) -> float:
        return self.written / 100.0


@dataclass(frozen=True)
class Duration(Node):
    """`24h`: a length of time; becomes a count of candles where one is needed."""

    amount: int
    unit: str

    @property
    def text(self) -> str:
        return f"{self.amount}{self.unit}"


@dataclass(frozen=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True)
class String(Node):
    value: str


@dataclass(frozen=True)
class Name(Node):
    """A candle field, a named definition, a trade-context name, or a regime table."""

    id: str


@dataclass(frozen=True)
class Param(Node):
    """`$roc_threshold`: a knob declared under `params:`."""

    id: str


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...] = ()
    # its window was written as a duration (`24h`): where candles are missing it may
    # cover that much time rather than that many candles (compile/time_windows.py)
    spans_time: bool = False


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-", "+" or "not"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str  # "+", "-", "*", "/", "and", "or"
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(Node):
    """`a < b <= c`: every adjacent pair must hold; each operand is evaluated once."""

    first: Node
    rest: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class IfElse(Node):
    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class History(Node):
    """`x[n]`: the value of x, n candles of the current timeframe ago."""

    operand: Node
    offset: Node  # a Number, a Param, or (to be rejected) a negative number


@dataclass(frozen=True)
class Context(Node):
    """`x@1h[BTC/USDT]`: x evaluated on another timeframe and/or pair, then aligned back."""

    operand: Node
    timeframe: str | None
    pair: str | None


@dataclass(frozen=True)
class Predict(Node):
    """`predict(m)` or `model_accuracy(m, n)` once checked: the model's features and label
    written out in the timeframe where it is read, and how it is trained.

    The label is a condition read `settings.horizon` candles after the candle it labels:
    only the models stage shifts it back, to build training samples. Rules read the
    probability (or the rolling accuracy), never the label.
    """

    model: str
    output: str  # "probability" or "accuracy"
    window: int  # accuracy: the last `window` scored predictions; 0 for a probability
    features: tuple[Node, ...]
    label: Node
    settings: ModelSettings

    def probability(self) -> Predict:
        """The probability node the accuracy of this model is scored on."""
        return Predict(self.model, "probability", 0, self.features, self.label, self.settings)


COMPARISON_OPS = ("<", "<=", ">", ">=", "==", "!=")


# Every distinct tree shape gets a number once: its node types and values, children by
# their numbers. Two nodes are equal when their numbers are (spans aside, as before), so
# comparing or hashing a deep tree costs one lookup, not a walk. The compiler keys every
# series by its node and the engine looks them up per candle and per trade, with equal
# trees written in different places: walking them each time cost more than the work.
_SHAPES: dict[tuple[object, ...], int] = {}
_NUMBERS = itertools.count()  # unique even if two threads number new shapes at once


def shape(node: Node) -> int:
    """The number of the node's shape, kept on the node (not in copies or pickles: the
    numbers belong to this process)."""
    known: int | None = node.__dict__.get("_shape")
    if known is None:
        key = (type(node), *(_flat(getattr(node, f.name)) for f in fields(node) if f.compare))
        known = _SHAPES.setdefault(key, next(_NUMBERS))
        object.__setattr__(node, "_shape", known)
    return known


def _flat(value: object) -> object:
    if isinstance(value, Node):
        return (Node, shape(value))
    if isinstance(value, tuple):
        return tuple(_flat(item) for item in value)
    return value


def _by_shape(cls: type[Node]) -> None:
    def __eq__(self: Node, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self is other or shape(self) == shape(other)

    def __hash__(self: Node) -> int:  # the hot path: a node already numbered
        known: int | None = self.__dict__.get("_shape")
        return known if known is not None else shape(self)

    cls.__eq__ = __eq__  # type: ignore[method-assign, assignment]
    cls.__hash__ = __hash__  # type: ignore[method-assign, assignment]


_KINDS: list[type[Node]] = [Node, *Node.__subclasses__()]
for _kind in _KINDS:
    _by_shape(_kind)
