"""Give every expression a unit and report the mixes that cannot be right.

Runs on the parsed tree (before params and percentages are folded into plain numbers),
after the resolver has accepted it, so names, arities and kinds are known to be sound.
Units come from the declarations: candle fields and trade names in `names.py`, each
function's `unit`, `alike` and `arg_units` in the registry, each param's `unit:` key.
A param without one takes its unit from how its value is written (`2%` is a ratio) or,
failing that, from the first thing it is compared with or added to; `--set` is checked
against that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kinetic_rules.errors import Diagnostic, Span
from kinetic_rules.functions import REGISTRY, Function
from kinetic_rules.lang import ast
from kinetic_rules.lang.names import (
    CANDLE_FIELDS,
    CONTEXT_FUNCTIONS,
    CONTEXT_NAMES,
    MODEL_FUNCTIONS,
)
from kinetic_rules.lang.printer import to_text
from kinetic_rules.spec.loader import Positions
from kinetic_rules.spec.models import Param
from kinetic_rules.units import (
    HUNDREDFOLD,
    OPEN,
    SCALARS,
    Unit,
    divide,
    hundredfold,
    hundredth,
    mismatch_hint,
    multiply,
    parse_unit,
    unify,
)


@dataclass(frozen=True)
class Measured:
    """A value's unit; `param` names a bare $param whose unit is still open."""

    unit: Unit
    node: ast.Node
    param: str | None = None


@dataclass(frozen=True)
class ParamUnit:
    """A param's unit as the file fixes it, and its value as written (for messages)."""

    unit: Unit
    written: str
    declared: bool = False


class UnitChecker:
    def __init__(
        self,
        definitions: Mapping[str, ast.Node | None],
        params: Mapping[str, ParamUnit],
        tables: frozenset[str],
        report: Callable[[Diagnostic], None],
    ) -> None:
        self.definitions = definitions
        self.params = params
        self.tables = tables
        self.report = report
        self.inferred: dict[str, Unit] = {}  # params whose unit was learned from their use
        self._first_use: dict[str, ast.Node] = {}  # what each of those was first used with
        self._memo: dict[str, Unit] = {}
        self._stack: list[str] = []

    def check(self, tree: ast.Node, expected: Unit | None = None, what: str = "") -> Unit:
        """The unit of `tree`, reporting every mix inside it (and a result in another unit
        than `expected`, a section's own, e.g. a stop is a price)."""
        measured = self._measure(tree)
        if expected is not None and unify(measured.unit, expected) is None:
            message = f"{what} is {expected.words}, but this is {measured.unit.words}"
            hint = _SECTION_HINTS.get(expected) or mismatch_hint(measured.unit, expected)
            self.report(Diagnostic("error", "unit", message, tree.span, hint))
        return measured.unit

    def param_unit(self, name: str) -> Unit:
        """What a param is measured in: declared, as written, or as used."""
        fixed = self.params.get(name)
        if fixed is not None and (fixed.declared or fixed.unit != Unit.NUMBER):
            return fixed.unit
        return self.inferred.get(name, Unit.NUMBER)

    # ------------------------------------------------------------------------------------
    def _measure(self, node: ast.Node) -> Measured:
        method = getattr(self, f"_m_{type(node).__name__}", None)
        if method is None:
            return Measured(Unit.ANY, node)
        result: Measured = method(node)
        return result

    def _m_Number(self, node: ast.Number) -> Measured:
        return Measured(Unit.NUMBER, node)

    def _m_Percent(self, node: ast.Percent) -> Measured:
        return Measured(Unit.RATIO, node)

    def _m_Duration(self, node: ast.Duration) -> Measured:
        return Measured(Unit.COUNT, node)  # a duration in a rule counts candles

    def _m_Bool(self, node: ast.Bool) -> Measured:
        return Measured(Unit.BOOL, node)

    def _m_Param(self, node: ast.Param) -> Measured:
        fixed = self.params.get(node.id)
        if fixed is None:
            return Measured(Unit.ANY, node)
        if fixed.unit == Unit.NUMBER and not fixed.declared:  # open: learned from its use
            return Measured(Unit.NUMBER, node, param=node.id)
        return Measured(fixed.unit, node)

    def _m_ListLit(self, node: ast.ListLit) -> Measured:
        unit = Unit.NUMBER
        for item in node.items:
            measured = self._measure(item)
            unit = self._mix(Measured(unit, node), measured, "listed together")
        return Measured(unit, node)

    def _m_Name(self, node: ast.Name) -> Measured:
        builtin = CANDLE_FIELDS.get(node.id) or CONTEXT_NAMES.get(node.id)
        if builtin is not None:
            return Measured(builtin.unit, node)
        if node.id in self.tables:
            return Measured(Unit.NUMBER, node)
        tree = self.definitions.get(node.id)
        if tree is None or node.id in self._stack:
            return Measured(Unit.ANY, node)
        if node.id not in self._memo:
            self._stack.append(node.id)
            try:
                self._memo[node.id] = self._measure(tree).unit
            finally:
                self._stack.pop()
        return Measured(self._memo[node.id], node)

    def _m_Unary(self, node: ast.Unary) -> Measured:
        operand = self._measure(node.operand)
        if node.op == "not":
            return Measured(Unit.BOOL, node)
        return Measured(operand.unit, node, operand.param)

    def _m_Binary(self, node: ast.Binary) -> Measured:
        left, right = self._measure(node.left), self._measure(node.right)
        if node.op in ("and", "or"):
            return Measured(Unit.BOOL, node)
        if node.op in ("+", "-"):
            verb = "added" if node.op == "+" else "subtracted"
            return Measured(self._mix(left, right, verb), node)
        if node.op == "*":
            if _is_hundred(node.right):
                return Measured(hundredfold(left.unit), node)
            if _is_hundred(node.left):
                return Measured(hundredfold(right.unit), node)
            return Measured(multiply(left.unit, right.unit), node)
        if _is_hundred(node.right):
            return Measured(hundredth(left.unit), node)
        return Measured(divide(left.unit, right.unit), node)

    def _m_Compare(self, node: ast.Compare) -> Measured:
        left = self._measure(node.first)
        for _, operand in node.rest:
            right = self._measure(operand)
            if Unit.BOOL not in (left.unit, right.unit):
                self._mix(left, right, "compared")
            left = right
        return Measured(Unit.BOOL, node)

    def _m_IfElse(self, node: ast.IfElse) -> Measured:
        self._measure(node.condition)
        then, otherwise = self._measure(node.then), self._measure(node.otherwise)
        if Unit.BOOL in (then.unit, otherwise.unit):
            return Measured(then.unit, node)
        return Measured(self._mix(then, otherwise, "given by one rule"), node)

    def _m_History(self, node: ast.History) -> Measured:
        return Measured(self._measure(node.operand).unit, node)

    def _m_Context(self, node: ast.Context) -> Measured:
        return Measured(self._measure(node.operand).unit, node)

    def _m_Call(self, node: ast.Call) -> Measured:
        if node.func in MODEL_FUNCTIONS:  # a probability, or a share of predictions
            return Measured(Unit.RATIO, node)
        function = REGISTRY.get(node.func)
        if node.func in CONTEXT_FUNCTIONS:
            function = CONTEXT_FUNCTIONS[node.func][0]
        if function is None:
            return Measured(Unit.ANY, node)
        given = _bind(function, node)
        measured = {name: self._measure(value) for name, value in given.items()}
        units: dict[str, Unit] = {a.name: Unit.NUMBER for a in function.args}
        for name, value in measured.items():
            declared = function.arg_units.get(name)
            if declared is not None:
                where = f"{function.name}'s '{name}'"
                self._mix(Measured(declared, _Named(words=where)), value, "given")
            units[name] = value.unit
        for group in function.alike:
            present = [measured[name] for name in group if name in measured]
            if not present:
                continue
            common = present[0]
            for value in present[1:]:
                common = Measured(self._mix(common, value, "mixed"), common.node, common.param)
            for name in group:
                units[name] = common.unit
        return Measured(_result(function, units), node)

    # ------------------------------------------------------------------------------------
    def _mix(self, a: Measured, b: Measured, verb: str) -> Unit:
        """The common unit of two values used together, or an error and `any`."""
        common = unify(a.unit, b.unit)
        if common is not None:
            for one, other in ((a, b), (b, a)):
                if one.param and one.unit == Unit.NUMBER and other.unit not in OPEN:
                    self._learn(one, other)
            return common
        message, span, hint = self._explain(a, b, verb)
        self.report(Diagnostic("error", "unit", message, span, hint))
        return Unit.ANY

    def _learn(self, param: Measured, other: Measured) -> None:
        """A param with no unit of its own takes the unit of the first thing it meets; meeting
        something of another unit later means one knob is used for two different things."""
        name = param.param or ""
        first = self.inferred.get(name)
        if first is None:
            self.inferred[name] = other.unit
            self._first_use[name] = other.node
        elif unify(first, other.unit) is None:
            message = (
                f"${name} is used with {_text(other.node)}, {other.unit.words}, but also with "
                f"{_text(self._first_use[name])}, {first.words}"
            )
            hint = "a param measures one thing: use two params, or give it a `unit:`"
            self.report(Diagnostic("error", "unit", message, param.node.span, hint))

    def _explain(self, a: Measured, b: Measured, verb: str) -> tuple[str, Span, str | None]:
        for written, other in ((b, a), (a, b)):
            percent = _percent(written.node)
            if percent is not None and other.unit in HUNDREDFOLD and _listed(written.node):
                message = (
                    f"{_text(other.node)} is {other.unit.words}; {_text(written.node)} holds "
                    f"ratios ({percent:g}% means {percent / 100:g})"
                )
                return message, written.node.span, "write the numbers without %"
            if percent is not None and other.unit in HUNDREDFOLD:
                text = _text(written.node)
                message = (
                    f"{_text(other.node)} is {other.unit.words}; {text} means "
                    f"{percent / 100:g} — write {percent:g}"
                )
                return message, written.node.span, None
            name = written.node.id if isinstance(written.node, ast.Param) else ""
            param = self.params.get(name)
            if param and param.written.endswith("%") and other.unit in HUNDREDFOLD:
                value = _percent_text(param.written)
                message = (
                    f"{_text(other.node)} is {other.unit.words}; ${name} is {param.written}, "
                    f"which means {value / 100:g}"
                )
                return message, written.node.span, f"write {value:g} as its value in params"
            if percent is not None:
                message = (
                    f"{_text(other.node)} is {other.unit.words}, but {_text(written.node)} is "
                    f"the ratio {percent / 100:g}"
                )
                return message, written.node.span, mismatch_hint(a.unit, b.unit)
        message = (
            f"{_text(a.node)} is {a.unit.words}, but {_text(b.node)} is {b.unit.words}: "
            f"they cannot be {verb}"
        )
        return message, a.node.span.cover(b.node.span), mismatch_hint(a.unit, b.unit)


_SECTION_HINTS = {
    Unit.PRICE: "a stop is a price: 3% below the entry is entry_price * (1 - 3%)",
    Unit.RATIO: "the stake is a share of equity, a ratio such as 2%",
}


@dataclass(frozen=True)
class _Named(ast.Node):
    """A stand-in node that a message names in words, e.g. an argument's declared unit."""

    words: str = ""


def _bind(function: Function, node: ast.Call) -> dict[str, ast.Node]:
    names = [a.name for a in function.args]
    given = dict(zip(names, node.args, strict=False))
    given.update((key, value) for key, value in node.kwargs if key in names)
    return given


def _result(function: Function, units: Mapping[str, Unit]) -> Unit:
    if function.unit is None:
        return Unit.ANY
    if isinstance(function.unit, Unit):
        return function.unit
    return units.get(function.unit, Unit.ANY)


def _is_hundred(node: ast.Node) -> bool:
    return isinstance(node, ast.Number) and node.value == 100


def _percent(node: ast.Node) -> float | None:
    """The number written before % in a percentage literal (negated ones included)."""
    if isinstance(node, ast.Percent):
        return node.written
    if isinstance(node, ast.Unary) and node.op == "-" and isinstance(node.operand, ast.Percent):
        return -node.operand.written
    if isinstance(node, ast.ListLit):
        found = [_percent(item) for item in node.items]
        return next((p for p in found if p is not None), None)
    return None


def _listed(node: ast.Node) -> bool:
    return isinstance(node, ast.ListLit)


def _percent_text(written: str) -> float:
    return float(written.strip().rstrip("%"))


def _text(node: ast.Node) -> str:
    if isinstance(node, _Named):
        return node.words
    source = node.span.source
    if source is not None and node.span.end > node.span.start:
        text = " ".join(source.text[node.span.start : node.span.end].split())
    else:
        text = to_text(node)
    return text if len(text) <= 40 else text[:39] + "…"


def param_units(
    params: Mapping[str, Param], positions: Positions, report: Callable[[Diagnostic], None]
) -> dict[str, ParamUnit]:
    """Each param's unit as the file fixes it: its `unit:` key, else how its value is written.

    A value written as a percentage for a param declared in points or percent points is the
    same mistake as `rsi(close, 14) < 65%`, reported at the value.
    """
    found: dict[str, ParamUnit] = {}
    for name, param in params.items():
        written = str(param.value).strip()
        if isinstance(param.value, bool):
            found[name] = ParamUnit(Unit.BOOL, written)
            continue
        percent = written.endswith("%")
        if param.unit is None:
            unit = Unit.RATIO if percent else Unit.NUMBER
            if param.choices is not None:
                unit = Unit.ANY
            found[name] = ParamUnit(unit, written)
            continue
        declared = parse_unit(param.unit)
        found[name] = ParamUnit(declared, written, declared=True)
        if percent and declared not in SCALARS:
            value = _percent_text(written)
            message = f"${name} is {declared.words}; {written} means {value / 100:g}"
            hint = f"write {value:g}" if declared in HUNDREDFOLD else "write the number itself"
            span = positions.span(("params", name, "value"))
            report(Diagnostic("error", "unit", message, span, hint))
    return found


def set_unit_problem(name: str, text: str, unit: Unit) -> tuple[str, str] | None:
    """Why `--set name=text` does not fit the param's unit (message, hint), or None."""
    written = text.strip()
    if not written.endswith("%") or unit in SCALARS or unit in OPEN or unit == Unit.BOOL:
        return None
    try:
        value = _percent_text(written)
    except ValueError:
        return None  # not a number at all: the value check says so
    message = f"--set {name}={written}: ${name} is {unit.words}; {written} means {value / 100:g}"
    if unit in HUNDREDFOLD:
        return message, f"write --set {name}={value:g}"
    return message, "write the number itself, without %"
