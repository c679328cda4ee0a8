"""The interpreter's back-ends agree: a trade-scope evaluation that has to compute a whole
expression from candle columns gives the batch's values bit for bit, calls included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.compile.evaluate import Evaluator, PairSignals
from kinetic_rules.compile.interpret import binary, bind, combine, compare, function_of
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.compile.trade_eval import evaluate_at, evaluate_points, evaluate_span
from kinetic_rules.functions import REGISTRY, ArgKind
from kinetic_rules.lang import ast
from kinetic_rules.lang.checker import check
from kinetic_rules.lang.symbols import ELEMENTWISE
from kinetic_rules.spec.loader import load_text
from tests.conftest import fixture_candles

RULES = {
    "number": "if rsi(close, 14) > 50 then max(close, ema(close, 20)) else -sma(close, 5) / 2",
    "condition": "all(close > ema(close, 20), 3) or not rising(close, 2) and volume >= 0",
    "chain": "0 < roc(close, 12) <= 1 or count(close > open, 6) > 4",
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_the_trade_scope_computes_what_the_batch_computes(name: str) -> None:
    section = "indicators" if name == "number" else "conditions"
    text = (
        "metadata: {name: t}\ntimeframe: 5m\nmarket: {pairs: [BTC/USDT]}\n"
        f"{section}:\n  shown: {RULES[name]}\n"
        "entry:\n  long:\n    go: close > 0\n"
    )
    checked = check(load_text(text, "t.yaml"))
    plan = build_plan(checked)
    node = {**checked.indicators, **checked.conditions}["shown"].node
    columns = tuple(n for n in node.walk() if isinstance(n, ast.Name))
    windowed = tuple(
        n for n in node.walk() if isinstance(n, ast.Call) and n.func not in ELEMENTWISE
    )
    full = Evaluator(plan, fixture_candles).evaluate("BTC/USDT", (node, *columns, *windowed))
    batch = full.values[node]
    # Only the candle columns are given: every call and operator is the trade scope's own.
    bare = PairSignals(full.pair, full.index, {n: full.values[n] for n in columns}, None)
    spanned = evaluate_span(plan, node, bare, 0, len(full.index), {})
    assert spanned.dtype == batch.dtype
    np.testing.assert_array_equal(spanned, batch)
    # One candle on scalars (a portfolio decision's form) is a span of one candle.
    for local in range(0, len(full.index), 37):
        alone = evaluate_at(plan, node, bare, local, {})
        assert not isinstance(alone, np.ndarray)
        one = evaluate_span(plan, node, bare, local, local + 1, {})
        np.testing.assert_array_equal(alone, one[0])
    # Chosen candles at once (a backtest sizing every entry signal) are those candles' values,
    # where the market series are stored, as a plan stores them: only elementwise calls may
    # read a trade's values, and those the scope computes.
    points = np.arange(len(full.index) - 1, 0, -29)
    market = {n: full.values[n] for n in (*columns, *windowed)}
    partial = PairSignals(full.pair, full.index, market, None)
    chosen = evaluate_points(plan, node, partial, points, {})
    assert chosen.dtype == batch.dtype
    np.testing.assert_array_equal(chosen, batch[points])
    stored = PairSignals(full.pair, full.index, full.values, None)
    for local in range(0, len(full.index), 37):  # and a stored series is read, not computed
        np.testing.assert_array_equal(evaluate_at(plan, node, stored, local, {}), batch[local])
    assert np.isfinite(batch[100:]).any() if batch.dtype != bool else batch.any()


def test_every_constant_argument_is_bound_as_the_implementation_takes_it() -> None:
    """Whole numbers and windows are ints, numbers floats, lists tuples: in every setting."""
    for function in REGISTRY.all():
        args: list[ast.Node] = []
        for spec in function.args:
            if spec.kind.is_series:
                args.append(ast.Name("close"))
            elif spec.kind is ArgKind.LIST:
                args.append(ast.ListLit((ast.Number(1.0), ast.Number(2.0))))
            else:
                args.append(ast.Number(3.0))
        bound = bind(function_of(function.name), args)
        for spec, value in zip(function.args, bound, strict=True):
            if spec.kind.is_series:
                assert isinstance(value, ast.Node)
            elif spec.kind is ArgKind.LIST:
                assert value == (1.0, 2.0)
            elif spec.kind in (ArgKind.INT, ArgKind.WINDOW):
                assert type(value) is int and value == 3, (function.name, spec.name)
            else:
                assert type(value) is float, (function.name, spec.name)


_NUMBERS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1.0])
_SCALARS = _NUMBERS | _NUMBERS.map(np.float64)
_TRUTHS = st.booleans() | st.booleans().map(np.bool_)


@settings(max_examples=300)
@given(
    a=_SCALARS,
    b=_SCALARS,
    op=st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
    condition=_TRUTHS,
    other=_TRUTHS,
)
def test_one_candle_operators_give_what_numpy_gives(
    a: float, b: float, op: str, condition: bool, other: bool
) -> None:
    """A portfolio decision combines plain numbers: the operators' shortcuts there give
    numpy's values of numpy's types (a NaN compares false, an if keeps the bits it picks)."""
    numpy_op = {
        "<": np.less, "<=": np.less_equal, ">": np.greater,
        ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal,
    }[op]  # fmt: skip
    compared = compare(op, a, b)
    assert type(compared) is np.bool_ and compared == numpy_op(a, b)
    choose = ast.IfElse(ast.Name("c"), ast.Name("a"), ast.Name("b"))
    chosen = combine(choose, [condition, a, b], None)  # type: ignore[arg-type]
    expected = np.where(condition, a, b)
    assert type(chosen) is type(expected) and chosen.dtype == expected.dtype
    assert chosen.tobytes() == expected.tobytes()
    negated = combine(ast.Unary("not", ast.Name("c")), [condition], None)  # type: ignore[arg-type]
    assert type(negated) is np.bool_ and negated == np.logical_not(condition)
    for logic, numpy_logic in (("and", np.logical_and), ("or", np.logical_or)):
        both = binary(logic, condition, other)
        assert type(both) is np.bool_ and both == numpy_logic(condition, other)
