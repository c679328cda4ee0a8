"""A call of a library function: its arguments bound by name or position and checked.

Every argument ends up in declared order, defaults written out, so two spellings of a
call give one tree. Series arguments are typed; window, period and list arguments must
be fixed numbers within the function's declared bounds, so nothing a strategy file
writes can ask for an unbounded amount of work.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from kinetic_rules.errors import Span
from kinetic_rules.functions import REGISTRY, Arg, ArgKind, Function
from kinetic_rules.lang import ast
from kinetic_rules.lang.limits import list_values, window_hint
from kinetic_rules.lang.names import (
    CONTEXT_FUNCTIONS,
    MODEL_FUNCTIONS,
    Scope,
    reads_context,
    reads_portfolio,
)
from kinetic_rules.lang.symbols import (
    BOOL,
    DURATION,
    ELEMENTWISE,
    LIST,
    NUMBER,
    Typed,
    scope_words,
)

if TYPE_CHECKING:
    from kinetic_rules.lang.resolve import Resolver

Bound = list[ast.Node | None]


def resolve_call(resolver: Resolver, node: ast.Call, scope: Scope, tf: str) -> Typed | None:
    name_span = Span(node.span.source, node.span.start, node.span.start + len(node.func))
    function = REGISTRY.get(node.func)
    if node.func in CONTEXT_FUNCTIONS:
        function, allowed = CONTEXT_FUNCTIONS[node.func]
        if not allowed & scope:
            message = f"'{node.func}' exists only {scope_words(allowed)}"
            hint = "it weighs the pair being entered against the pairs already held"
            resolver._error(name_span, "wrong-place", message, hint)
            return None
    if function is None:
        names = REGISTRY.names() + list(CONTEXT_FUNCTIONS) + list(MODEL_FUNCTIONS)
        near = difflib.get_close_matches(node.func, names, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]}(...)?" if near else "see `kinetic-rules functions`"
        resolver._error(name_span, "unknown-function", f"unknown function '{node.func}'", hint)
        return None
    bound = _bind(resolver, function, node)
    if bound is None:
        return None
    args: list[ast.Node] = []
    ok = True
    spans_time = False
    for spec, given in zip(function.args, bound, strict=True):
        checked, was_duration = _argument(resolver, function, spec, given, scope, tf)
        ok = ok and checked is not None
        if checked is not None:
            args.append(checked)
        spans_time = spans_time or (spec.kind is ArgKind.WINDOW and was_duration)
    if not ok or not _lists_fit(resolver, function, node, bound, args):
        return None
    kind = BOOL if function.returns == "bool" else NUMBER
    call = ast.Call(function.name, tuple(args), span=node.span, spans_time=spans_time)
    return Typed(call, kind)


def _lists_fit(
    resolver: Resolver, function: Function, node: ast.Call, bound: Bound, args: list[ast.Node]
) -> bool:
    """List arguments checked together (levels that must rise, lengths that must match)."""
    lists = {
        spec.name: list_values(arg)
        for spec, arg in zip(function.args, args, strict=True)
        if isinstance(arg, ast.ListLit)
    }
    ok = True
    names = [spec.name for spec in function.args]
    for name, problem in function.list_problems(lists):
        given = bound[names.index(name)]
        span = given.span if given is not None else node.span
        resolver._error(span, "range", f"{function.name}'s '{name}' {problem}")
        ok = False
    return ok


def _bind(resolver: Resolver, function: Function, node: ast.Call) -> Bound | None:
    params = function.args
    if len(node.args) > len(params):
        extra = node.args[len(params)]
        message = f"{function.name} takes at most {len(params)} argument(s)"
        resolver._error(extra.span, "arity", message, function.signature())
        return None
    bound: Bound = [*node.args, *([None] * (len(params) - len(node.args)))]
    names = [p.name for p in params]
    for key, value in node.kwargs:
        if key not in names:
            near = difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean {near[0]}=?" if near else function.signature()
            message = f"{function.name} has no argument '{key}'"
            resolver._error(value.span, "arity", message, hint)
            return None
        index = names.index(key)
        if bound[index] is not None:
            resolver._error(value.span, "arity", f"argument '{key}' given twice")
            return None
        bound[index] = value
    for spec, given in zip(params, bound, strict=True):
        if given is None and spec.required:
            message = f"{function.name} needs its '{spec.name}' argument"
            resolver._error(node.span, "arity", message, function.signature())
            return None
    return bound


def _argument(
    resolver: Resolver,
    function: Function,
    spec: Arg,
    given: ast.Node | None,
    scope: Scope,
    tf: str,
) -> tuple[ast.Node | None, bool]:
    """The checked argument, and whether it was written as a duration."""
    if given is None:
        return ast.Number(float(spec.default)), False  # type: ignore[arg-type]
    typed = resolver._resolve(given, scope, tf)
    if typed is None:
        return None, False
    was_duration = typed.kind == DURATION
    where = f"{function.name}'s '{spec.name}'"
    if spec.kind is ArgKind.SERIES or spec.kind is ArgKind.BOOL_SERIES:
        return _series_argument(resolver, function, spec, typed, given, tf, where), was_duration
    if spec.kind is ArgKind.LIST:
        if typed.kind != LIST:
            resolver._error(given.span, "type", f"{where} is a list such as [60, 70, 80]")
            return None, was_duration
        assert isinstance(typed.node, ast.ListLit)
        problem = spec.problem(list_values(typed.node))
        if problem is not None:
            resolver._error(given.span, "range", f"{where} {problem}")
            return None, was_duration
        return typed.node, was_duration
    typed = resolver._as_number(typed, tf, given.span)
    if typed.kind == "error":
        return None, was_duration
    if not isinstance(typed.node, ast.Number):
        resolver._error(given.span, "constant", f"{where} must be a fixed number, not a series")
        return None, was_duration
    problem = spec.problem(typed.node.value)
    if problem is not None:
        code = "type" if problem == "must be a whole number" else "range"
        hint = window_hint(spec, tf) if problem.startswith("must be at most") else None
        resolver._error(given.span, code, f"{where} {problem}", hint)
        return None, was_duration
    return typed.node, was_duration


def _series_argument(
    resolver: Resolver,
    function: Function,
    spec: Arg,
    typed: Typed,
    given: ast.Node,
    tf: str,
    where: str,
) -> ast.Node | None:
    want = NUMBER if spec.kind is ArgKind.SERIES else BOOL
    typed = resolver._as_number(typed, tf) if want == NUMBER else typed
    if not resolver._expect(typed, want, given.span, where):
        return None
    if function.name not in ELEMENTWISE and reads_context(typed.node):
        what = "a portfolio value" if reads_portfolio(typed.node) else "a trade value"
        resolver._error(given.span, "wrong-place", f"{where} cannot follow {what}")
        return None
    return typed.node
