"""`predict(m)` and `model_accuracy(m, n)`: a model written out where it is read.

The model's features and label are resolved like any rule (so names, types, units and
look-ahead are checked the same way), in the base timeframe of the traded pair, and the
call becomes one `ast.Predict` node carrying them and the training settings. A disabled
model carries neither: nothing is computed for it and its values are undefined.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from kinetic_rules.errors import Span
from kinetic_rules.lang import ast
from kinetic_rules.lang.names import MAX_ACCURACY_WINDOW, MODEL_FUNCTIONS, Scope
from kinetic_rules.lang.symbols import BOOL, NUMBER, Typed

if TYPE_CHECKING:
    from kinetic_rules.lang.resolve import Resolver

Built = tuple[tuple[ast.Node, ...], ast.Node]


def resolve_model_call(resolver: Resolver, node: ast.Call, scope: Scope, tf: str) -> Typed | None:
    signature = MODEL_FUNCTIONS[node.func][0]
    name_span = Span(node.span.source, node.span.start, node.span.start + len(node.func))
    accuracy = node.func == "model_accuracy"
    if node.kwargs or len(node.args) != (2 if accuracy else 1):
        resolver._error(node.span, "arity", f"{node.func} is called as {signature}", signature)
        return None
    if resolver._inside_context or resolver._in_model:
        where = "inside @timeframe or [PAIR]" if resolver._inside_context else "in a model"
        hint = "a model predicts for the traded pair on the base timeframe"
        resolver._error(name_span, "wrong-place", f"{node.func} cannot be read {where}", hint)
        return None
    first = node.args[0]
    models = resolver.symbols.models
    if not isinstance(first, ast.Name) or first.id not in models:
        written = first.id if isinstance(first, ast.Name) else ""
        near = difflib.get_close_matches(written, list(models), n=1, cutoff=0.6)
        hint = f"did you mean '{near[0]}'?" if near else "declare it under `models:`"
        if not models:
            hint = "declare it under `models:` (docs/models.md)"
        what = f"unknown model '{written}'" if written else f"{node.func} needs a model's name"
        resolver._error(first.span, "unknown-model", what, hint)
        return None
    resolver.symbols.used.add("model:" + first.id)
    window = 0
    if accuracy:
        given = resolver._number_const(node.args[1], scope, tf, "model_accuracy's n")
        if given is None:
            return None
        assert isinstance(given, ast.Number)
        if not given.value.is_integer() or not 1 <= given.value <= MAX_ACCURACY_WINDOW:
            message = f"model_accuracy's n is a whole number from 1 to {MAX_ACCURACY_WINDOW}"
            resolver._error(node.args[1].span, "range", message)
            return None
        window = int(given.value)
    built = _model(resolver, first.id, tf)
    if built is None:
        return None
    features, label = built
    output = "accuracy" if accuracy else "probability"
    settings = models[first.id].settings
    predict = ast.Predict(first.id, output, window, features, label, settings, span=node.span)
    return Typed(predict, NUMBER)


def _model(resolver: Resolver, name: str, tf: str) -> Built | None:
    key = (name, tf)
    if key in resolver._models:
        return resolver._models[key]
    source = resolver.symbols.models[name]
    resolver._in_model += 1
    try:
        features: list[ast.Node] = []
        ok = True
        for feature, tree in source.features:
            node = _feature(resolver, name, feature, tree, tf) if tree is not None else None
            ok = ok and node is not None
            if node is not None:
                features.append(node)
        label = None
        if source.label is not None:
            typed = resolver._resolve(source.label, Scope.MARKET, tf)
            if typed is not None and typed.kind != BOOL:
                message = f"model {name}'s label `when` must be a condition (true/false)"
                resolver._error(source.label.span, "type", message, "e.g. close > close[48]")
                typed = None
            label = typed.node if typed is not None else None
    finally:
        resolver._in_model -= 1
    built: Built | None = None
    if ok and label is not None:
        built = (tuple(features), label) if source.settings.enabled else ((), ast.Bool(False))
    resolver._models[key] = built
    return built


def _feature(
    resolver: Resolver, model: str, feature: str, tree: ast.Node, tf: str
) -> ast.Node | None:
    typed = resolver._resolve(tree, Scope.MARKET, tf)
    if typed is None:
        return None
    typed = resolver._as_number(typed, tf, tree.span)
    if typed.kind == BOOL:  # a condition counts as 1 where it holds, else 0
        return ast.IfElse(typed.node, ast.Number(1.0), ast.Number(0.0), span=tree.span)
    if typed.kind != NUMBER:
        message = f"model {model}'s feature {feature} must give a number or a condition"
        resolver._error(tree.span, "type", message)
        return None
    return typed.node
