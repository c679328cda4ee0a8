"""Resolve and type one expression in its context.

The result is a fully inlined tree: named definitions are expanded (in the timeframe
where they are used), params become numbers, durations become candle counts of the
timeframe they are evaluated in, constant arithmetic is folded and function calls get
every argument in declared order. Two ways of writing the same series therefore give
one tree — the key the compiler computes once. Errors are reported, never raised, and
a failed subtree yields None so one mistake does not cascade into many.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable

from kinetic_rules.errors import Diagnostic, Span
from kinetic_rules.functions import MAX_CANDLES, REGISTRY
from kinetic_rules.lang import ast
from kinetic_rules.lang.calls import resolve_call
from kinetic_rules.lang.limits import (
    MAX_EXPANDED_DEPTH,
    SPLIT_HINT,
    TOO_DEEP,
    TreeMeter,
)
from kinetic_rules.lang.model_calls import resolve_model_call
from kinetic_rules.lang.names import (
    CANDLE_FIELDS,
    CONTEXT_FUNCTIONS,
    CONTEXT_NAMES,
    MODEL_FUNCTIONS,
    Scope,
    reads_context,
    reads_portfolio,
)
from kinetic_rules.lang.symbols import (
    BOOL,
    DURATION,
    LIST,
    NUMBER,
    STRING,
    Definition,
    Symbols,
    Typed,
    compare_words,
    fold,
    is_regime,
    kind_word,
    scope_words,
)
from kinetic_rules.timeframes import (
    candles_in,
    parse_duration,
    timeframe_seconds,
)

__all__ = ["BOOL", "NUMBER", "Definition", "Resolver", "Symbols", "Typed"]


class Resolver:
    def __init__(self, symbols: Symbols, report: Callable[[Diagnostic], None]) -> None:
        self.symbols = symbols
        self.report = report
        self._memo: dict[tuple[str, str], Typed | None] = {}
        self._stack: list[str] = []
        self._inside_context = 0  # > 0 while resolving the operand of @tf / [PAIR]
        self._depth = 0  # nodes being resolved, one inside the other
        self._meter = TreeMeter()
        self._in_model = 0  # > 0 while resolving a model's features and label
        self._models: dict[tuple[str, str], tuple[tuple[ast.Node, ...], ast.Node] | None] = {}

    # entry point ----------------------------------------------------------------------
    def resolve(self, tree: ast.Node, scope: Scope, timeframe: str) -> Typed | None:
        typed = self._resolve(tree, scope, timeframe)
        if typed is not None and not self._small_enough(typed.node, tree.span):
            return None
        return typed

    def _error(self, span: Span, code: str, message: str, hint: str | None = None) -> None:
        self.report(Diagnostic("error", code, message, span, hint))

    def _resolve(self, node: ast.Node, scope: Scope, tf: str) -> Typed | None:
        if self._depth >= MAX_EXPANDED_DEPTH:
            self._error(node.span, "too-deep", TOO_DEEP, SPLIT_HINT)
            return None
        method = getattr(self, f"_r_{type(node).__name__}")
        self._depth += 1
        try:
            result: Typed | None = method(node, scope, tf)
        finally:
            self._depth -= 1
        return result

    def _small_enough(self, node: ast.Node, span: Span) -> bool:
        """Report a resolved tree beyond the limits every later stage relies on."""
        problem = self._meter.problem(node)
        if problem is not None:
            code, message = problem
            self._error(span, code, message, SPLIT_HINT)
        return problem is None

    # literals ---------------------------------------------------------------------------
    def _r_Number(self, node: ast.Number, scope: Scope, tf: str) -> Typed:
        return Typed(node, NUMBER)

    def _r_Percent(self, node: ast.Percent, scope: Scope, tf: str) -> Typed:
        return Typed(ast.Number(node.value, span=node.span), NUMBER)

    def _r_Bool(self, node: ast.Bool, scope: Scope, tf: str) -> Typed:
        return Typed(node, BOOL)

    def _r_String(self, node: ast.String, scope: Scope, tf: str) -> Typed:
        return Typed(node, STRING)

    def _r_Duration(self, node: ast.Duration, scope: Scope, tf: str) -> Typed:
        return Typed(node, DURATION)

    def _r_ListLit(self, node: ast.ListLit, scope: Scope, tf: str) -> Typed | None:
        items = [self._number_const(item, scope, tf, "list items") for item in node.items]
        if any(i is None for i in items):
            return None
        return Typed(ast.ListLit(tuple(i for i in items if i), span=node.span), LIST)

    def _r_Param(self, node: ast.Param, scope: Scope, tf: str) -> Typed | None:
        params = self.symbols.params
        if node.id not in params and node.id in self.symbols.declared_params:
            return None  # its value was rejected; that error is reported already
        if node.id not in params:
            near = difflib.get_close_matches(node.id, sorted(self.symbols.declared_params), n=1)
            hint = f"did you mean ${near[0]}?" if near else "declare it under `params:`"
            self._error(node.span, "unknown-param", f"unknown param ${node.id}", hint)
            return None
        self.symbols.used.add("$" + node.id)
        value = params[node.id]
        if isinstance(value, bool):
            return Typed(ast.Bool(value, span=node.span), BOOL)
        if isinstance(value, str):
            return Typed(ast.String(value, span=node.span), STRING)
        return Typed(ast.Number(float(value), span=node.span), NUMBER)

    # names ------------------------------------------------------------------------------
    def _r_Name(self, node: ast.Name, scope: Scope, tf: str) -> Typed | None:
        name = node.id
        if name in CANDLE_FIELDS:
            return Typed(node, NUMBER)
        if name in self.symbols.definitions:
            return self._definition(node, tf)
        if name in CONTEXT_NAMES:
            builtin = CONTEXT_NAMES[name]
            if not (builtin.scope & scope):
                where = scope_words(builtin.scope)
                hint = "rules about entering and the scanner run before any trade exists"
                if not builtin.scope & (Scope.TRADE | Scope.SIZING):
                    hint = _PORTFOLIO_HINT
                self._error(node.span, "wrong-place", f"'{name}' exists only {where}", hint)
                return None
            return Typed(node, NUMBER)
        if name == "regime" or name in self.symbols.regime_tables:
            if name == "regime" and not self.symbols.regime_classes:
                self._error(node.span, "no-regime", "'regime' needs a `regime:` section")
                return None
            if self._inside_context:
                self._error(
                    node.span,
                    "wrong-place",
                    f"'{name}' belongs to the traded pair on the base timeframe",
                    "read it outside @timeframe and [PAIR]",
                )
                return None
            return Typed(node, STRING if name == "regime" else NUMBER)
        if name in REGISTRY:
            self._error(
                node.span,
                "not-called",
                f"'{name}' is a function",
                f"call it: {REGISTRY.get(name).signature()}",  # type: ignore[union-attr]
            )
            return None
        self._unknown(node.span, name, scope)
        return None

    def _unknown(self, span: Span, name: str, scope: Scope) -> None:
        visible = [*CANDLE_FIELDS, *self.symbols.definitions, *self.symbols.regime_tables]
        visible += [n for n, b in CONTEXT_NAMES.items() if b.scope & scope]
        visible += REGISTRY.names() + [n for n, (_, s) in CONTEXT_FUNCTIONS.items() if s & scope]
        near = difflib.get_close_matches(name, visible, n=1, cutoff=0.6)
        hint = f"did you mean '{near[0]}'?" if near else None
        if hint is None and name.startswith("$"):
            hint = "params are written $name"
        self._error(span, "unknown-name", f"unknown name '{name}'", hint)

    def _definition(self, node: ast.Name, tf: str) -> Typed | None:
        name = node.id
        self.symbols.used.add(name)
        if name in self._stack:
            cycle = " → ".join([*self._stack[self._stack.index(name) :], name])
            self._error(node.span, "cycle", f"definitions refer to each other: {cycle}")
            return None
        key = (name, tf)
        if key not in self._memo:
            definition = self.symbols.definitions[name]
            self._stack.append(name)
            try:
                scope = Scope.MARKET | (Scope.LIVE if not self._inside_context else Scope(0))
                typed = self._resolve(definition.tree, scope, tf) if definition.tree else None
            finally:
                self._stack.pop()
            tree = definition.tree
            if (
                typed is not None
                and tree is not None
                and not self._small_enough(typed.node, tree.span)
            ):
                typed = None
            self._memo[key] = typed if typed and typed.kind == definition.kind else None
        return self._memo[key]

    # operators --------------------------------------------------------------------------
    def _r_Unary(self, node: ast.Unary, scope: Scope, tf: str) -> Typed | None:
        operand = self._resolve(node.operand, scope, tf)
        if operand is None:
            return None
        want = BOOL if node.op == "not" else NUMBER
        if not self._expect(operand, want, node.operand.span, f"'{node.op}'"):
            return None
        inner = operand.node
        if node.op == "+":
            return operand
        if node.op == "-" and isinstance(inner, ast.Number):
            return Typed(ast.Number(-inner.value, span=node.span), NUMBER)
        if node.op == "not" and isinstance(inner, ast.Bool):
            return Typed(ast.Bool(not inner.value, span=node.span), BOOL)
        return Typed(ast.Unary(node.op, inner, span=node.span), want)

    def _r_Binary(self, node: ast.Binary, scope: Scope, tf: str) -> Typed | None:
        left = self._resolve(node.left, scope, tf)
        right = self._resolve(node.right, scope, tf)
        if left is None or right is None:
            return None
        left, right = self._as_number(left, tf), self._as_number(right, tf)
        want = BOOL if node.op in ("and", "or") else NUMBER
        ok_left = self._expect(left, want, node.left.span, f"'{node.op}'")
        ok_right = self._expect(right, want, node.right.span, f"'{node.op}'")
        if not (ok_left and ok_right):
            return None
        a, b = left.node, right.node
        if isinstance(a, ast.Number) and isinstance(b, ast.Number):
            folded = fold(node.op, a.value, b.value)
            if folded is not None and not math.isfinite(folded):
                self._error(node.span, "range", "this calculation gives a number too large to use")
                return None
            if folded is not None:
                return Typed(ast.Number(folded, span=node.span), NUMBER)
        if isinstance(a, ast.Bool) and isinstance(b, ast.Bool):
            value = (a.value and b.value) if node.op == "and" else (a.value or b.value)
            return Typed(ast.Bool(value, span=node.span), BOOL)
        return Typed(ast.Binary(node.op, a, b, span=node.span), want)

    def _r_Compare(self, node: ast.Compare, scope: Scope, tf: str) -> Typed | None:
        operands = [self._resolve(node.first, scope, tf)]
        operands += [self._resolve(operand, scope, tf) for _, operand in node.rest]
        if any(o is None for o in operands):
            return None
        typed = [self._as_number(o, tf) for o in operands if o is not None]
        spans = [node.first.span, *(operand.span for _, operand in node.rest)]
        for (op, _), left, right, span in zip(node.rest, typed, typed[1:], spans[1:], strict=False):
            if STRING in (left.kind, right.kind):
                if not self._check_string_compare(op, left, right, span):
                    return None
                continue
            if op in ("==", "!=") and left.kind == right.kind == BOOL:
                continue
            if not (self._expect(left, NUMBER, span, f"'{op}'")):
                return None
            if not (self._expect(right, NUMBER, span, f"'{op}'")):
                return None
        first, *rest = (t.node for t in typed)
        pairs = tuple((op, n) for (op, _), n in zip(node.rest, rest, strict=True))
        if all(isinstance(n, ast.String) for n in (first, *rest)):
            return Typed(ast.Bool(compare_words(first, pairs), span=node.span), BOOL)
        return Typed(ast.Compare(first, pairs, span=node.span), BOOL)

    def _check_string_compare(self, op: str, left: Typed, right: Typed, span: Span) -> bool:
        if op not in ("==", "!=") or left.kind != right.kind:
            self._error(span, "type", "words can only be compared with == or != to words")
            return False
        for side in (left.node, right.node):
            if isinstance(side, ast.String) and any(is_regime(o) for o in (left.node, right.node)):
                classes = self.symbols.regime_classes
                if side.value not in classes:
                    near = difflib.get_close_matches(side.value, classes, n=1)
                    hint = (
                        f"did you mean '{near[0]}'?" if near else f"regimes: {', '.join(classes)}"
                    )
                    self._error(side.span, "unknown-regime", f"no regime '{side.value}'", hint)
                    return False
        return True

    def _r_IfElse(self, node: ast.IfElse, scope: Scope, tf: str) -> Typed | None:
        cond = self._resolve(node.condition, scope, tf)
        then = self._resolve(node.then, scope, tf)
        other = self._resolve(node.otherwise, scope, tf)
        if cond is None or then is None or other is None:
            return None
        if not self._expect(cond, BOOL, node.condition.span, "'if'"):
            return None
        then, other = self._as_number(then, tf), self._as_number(other, tf)
        if then.kind != other.kind or then.kind not in (NUMBER, BOOL):
            self._error(
                node.span,
                "type",
                f"'then' gives a {kind_word(then.kind)}, 'else' a {kind_word(other.kind)}",
                "both branches must give the same kind of value",
            )
            return None
        if isinstance(cond.node, ast.Bool):
            return then if cond.node.value else other
        return Typed(ast.IfElse(cond.node, then.node, other.node, span=node.span), then.kind)

    # postfix ----------------------------------------------------------------------------
    def _r_History(self, node: ast.History, scope: Scope, tf: str) -> Typed | None:
        operand = self._resolve(node.operand, scope, tf)
        offset = self._resolve(node.offset, scope, tf)
        if operand is None or offset is None:
            return None
        value = offset.node.value if isinstance(offset.node, ast.Number) else None
        if value is None or not float(value).is_integer():
            self._error(
                node.offset.span, "history", "a history offset is a whole number of candles"
            )
            return None
        if value > MAX_CANDLES:
            self._error(
                node.offset.span,
                "range",
                f"a history offset is at most {MAX_CANDLES} candles",
            )
            return None
        if value < 0:
            self._error(
                node.offset.span,
                "look-ahead",
                f"[{int(value)}] would read the future",
                "x[n] is the value n candles ago; n must be 0 or more",
            )
            return None
        is_regime = isinstance(operand.node, ast.Name) and operand.node.id == "regime"
        if operand.kind not in (NUMBER, BOOL) and not is_regime:
            self._error(node.span, "type", "only numbers, conditions and the regime have a history")
            return None
        if self._uses_trade(operand.node):
            message = "trade values have no history; use max_profit"
            if reads_portfolio(operand.node):
                message = "portfolio values have no history: they exist at a decision only"
            self._error(node.span, "wrong-place", message)
            return None
        if value == 0:
            return operand
        return Typed(ast.History(operand.node, ast.Number(value), span=node.span), operand.kind)

    def _r_Context(self, node: ast.Context, scope: Scope, tf: str) -> Typed | None:
        target_tf = node.timeframe or tf
        ok = True
        if node.timeframe is not None:
            ok = self._check_timeframe(node, tf)
        if node.pair is not None:
            ok = self._check_pair(node) and ok
        if not ok:
            return None
        self._inside_context += 1
        try:
            inner = self._resolve(node.operand, Scope.MARKET, target_tf)
        finally:
            self._inside_context -= 1
        if inner is None:
            return None
        if inner.kind not in (NUMBER, BOOL):
            self._error(node.span, "type", "only numbers and conditions can be read elsewhere")
            return None
        return Typed(ast.Context(inner.node, node.timeframe, node.pair, span=node.span), inner.kind)

    def _check_timeframe(self, node: ast.Context, tf: str) -> bool:
        assert node.timeframe is not None
        try:
            other = timeframe_seconds(node.timeframe)
        except ValueError as problem:
            self._error(node.span, "timeframe", str(problem))
            return False
        here = timeframe_seconds(tf)
        if other < here or other % here:
            self._error(
                node.span,
                "timeframe",
                f"@{node.timeframe} cannot be read from {tf} candles",
                f"use a timeframe that is a whole multiple of {tf}",
            )
            return False
        allowed = self.symbols.informative_timeframes
        if allowed is not None and other != here and node.timeframe not in allowed:
            self._error(
                node.span,
                "undeclared",
                f"timeframe {node.timeframe} is not in `informative`",
                "add it to informative.timeframes",
            )
            return False
        return True

    def _check_pair(self, node: ast.Context) -> bool:
        assert node.pair is not None
        allowed = self.symbols.informative_pairs
        if allowed is not None and node.pair not in allowed:
            self._error(
                node.span,
                "undeclared",
                f"pair {node.pair} is not in `informative`",
                "add it to informative.pairs",
            )
            return False
        return True

    # calls ------------------------------------------------------------------------------
    def _r_Call(self, node: ast.Call, scope: Scope, tf: str) -> Typed | None:
        if node.func in MODEL_FUNCTIONS:
            return resolve_model_call(self, node, scope, tf)
        return resolve_call(self, node, scope, tf)

    # helpers ----------------------------------------------------------------------------
    def _as_number(self, typed: Typed, tf: str, span: Span | None = None) -> Typed:
        """A duration where a number is wanted counts candles of the current timeframe."""
        if typed.kind != DURATION:
            return typed
        node = typed.node
        assert isinstance(node, ast.Duration)
        try:
            count = candles_in(parse_duration(node.text), tf)
        except ValueError as problem:
            self._error(span or node.span, "duration", str(problem))
            return Typed(ast.Number(float("nan"), span=node.span), "error")
        return Typed(ast.Number(float(count), span=node.span), NUMBER)

    def _number_const(self, node: ast.Node, scope: Scope, tf: str, what: str) -> ast.Node | None:
        typed = self._resolve(node, scope, tf)
        if typed is None:
            return None
        typed = self._as_number(typed, tf)
        if not isinstance(typed.node, ast.Number):
            self._error(node.span, "constant", f"{what} must be fixed numbers")
            return None
        return typed.node

    def _expect(self, typed: Typed, want: str, span: Span, where: str) -> bool:
        if typed.kind == "error":
            return False
        if typed.kind == DURATION and want == NUMBER:
            return True
        if typed.kind == want:
            return True
        hint = None
        if want == NUMBER and typed.kind == BOOL:
            hint = "to count a condition as a number, write: if <condition> then 1 else 0"
        elif want == BOOL and typed.kind == NUMBER:
            hint = "compare it with something, e.g. x > 0"
        self._error(
            span, "type", f"{where} needs a {kind_word(want)}, got a {kind_word(typed.kind)}", hint
        )
        return False

    def _uses_trade(self, node: ast.Node) -> bool:
        return reads_context(node)


_PORTFOLIO_HINT = (
    "indicators, conditions, the scanner and trade rules are computed for every candle at "
    "once; the portfolio is known only when it decides"
)
