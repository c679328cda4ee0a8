"""Evaluation: vectorized equals a per-row reference, and no value can see the future."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kinetic_rules.compile.evaluate import Evaluator
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.errors import StrategyError
from kinetic_rules.lang import ast
from kinetic_rules.lang.checker import check
from kinetic_rules.lang.printer import to_text
from kinetic_rules.spec.loader import load_file, load_text
from kinetic_rules.timeframes import timeframe_seconds
from tests.conftest import STRATEGIES, fixture_candles

FIELDS = ["open", "high", "low", "close", "volume"]


# A per-row reference: the obvious, slow meaning of each operator. ------------------------


def reference(node: ast.Node, rows: pd.DataFrame, t: int) -> float | bool:
    match node:
        case ast.Number(value=v):
            return v
        case ast.Bool(value=v):
            return v
        case ast.Name(id=name):
            return float(rows[name].iloc[t])
        case ast.Unary(op="not", operand=o):
            return not reference(o, rows, t)
        case ast.Unary(op="-", operand=o):
            return -float(reference(o, rows, t))
        case ast.Binary(op="and", left=a, right=b):
            return bool(reference(a, rows, t)) and bool(reference(b, rows, t))
        case ast.Binary(op="or", left=a, right=b):
            return bool(reference(a, rows, t)) or bool(reference(b, rows, t))
        case ast.Binary(op=op, left=a, right=b):
            x, y = float(reference(a, rows, t)), float(reference(b, rows, t))
            if op == "/":
                return x / y if y != 0 and math.isfinite(x / y) else math.nan
            return {"+": x + y, "-": x - y, "*": x * y}[op]
        case ast.Compare(first=first, rest=rest):
            left = reference(first, rows, t)
            for op, operand in rest:
                right = reference(operand, rows, t)
                holds = {
                    "<": left < right,
                    "<=": left <= right,
                    ">": left > right,
                    ">=": left >= right,
                    "==": left == right,
                    "!=": left != right,
                }[op]
                if not holds:
                    return False
                left = right
            return True
        case ast.IfElse(condition=c, then=a, otherwise=b):
            return reference(a, rows, t) if reference(c, rows, t) else reference(b, rows, t)
        case ast.History(operand=o, offset=ast.Number(value=k)):
            back = t - int(k)
            if back < 0:
                return math.nan if _is_number(o) else False
            return reference(o, rows, back)
    raise TypeError(node)


def _is_number(node: ast.Node) -> bool:
    match node:
        case ast.Compare() | ast.Bool():
            return False
        case ast.Unary(op="not") | ast.Binary(op="and") | ast.Binary(op="or"):
            return False
        case ast.IfElse(then=then):
            return _is_number(then)
        case ast.History(operand=operand):
            return _is_number(operand)
    return True


# Prices only: volume compared with a price is refused by the unit checker.
numbers_leaf = st.one_of(
    st.sampled_from(FIELDS[:4]).map(ast.Name),
    st.integers(0, 100).map(lambda i: ast.Number(float(i))),
)


def _numbers(children: st.SearchStrategy[ast.Node]) -> st.SearchStrategy[ast.Node]:
    return st.one_of(
        st.builds(ast.Binary, st.sampled_from(["+", "-", "*", "/"]), children, children),
        st.builds(ast.Unary, st.just("-"), children),
        st.builds(ast.History, children, st.integers(0, 4).map(lambda i: ast.Number(float(i)))),
    )


number_trees = st.recursive(numbers_leaf, _numbers, max_leaves=6)
comparisons = st.builds(
    ast.Compare,
    number_trees,
    st.lists(
        st.tuples(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), number_trees),
        min_size=1,
        max_size=2,
    ).map(tuple),
)


def _conditions(children: st.SearchStrategy[ast.Node]) -> st.SearchStrategy[ast.Node]:
    return st.one_of(
        st.builds(ast.Binary, st.sampled_from(["and", "or"]), children, children),
        st.builds(ast.Unary, st.just("not"), children),
        st.builds(ast.History, children, st.integers(0, 3).map(lambda i: ast.Number(float(i)))),
    )


condition_trees = st.recursive(comparisons, _conditions, max_leaves=4)


def _frame(seed: int, length: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, size=(length, 5)).astype(float)  # small ints: ties and zeros
    index = pd.date_range("2024-01-01", periods=length, freq="5min", tz="UTC")
    return pd.DataFrame(values, columns=FIELDS, index=index)


@settings(max_examples=150, deadline=None)
@given(condition_trees, st.integers(0, 1000))
def test_vectorized_equals_per_row_reference(tree: ast.Node, seed: int) -> None:
    rows = _frame(seed, 12)
    text = to_text(tree)
    strategy = f"metadata: {{name: t}}\ntimeframe: 5m\nentry:\n  long:\n    rule: '{text}'\n"
    try:
        checked = check(load_text(strategy, "t.yaml"))
    except StrategyError as refused:  # e.g. a ratio added to a price: no rule to evaluate
        assume(not all(d.code == "unit" for d in refused.diagnostics))
        raise
    plan = build_plan(checked)
    signals = Evaluator(plan, lambda pair, tf: rows).evaluate("X/USDT")
    got = signals.all_of(plan.strategy.entry["long"])
    want = [bool(reference(tree, rows, t)) for t in range(len(rows))]
    assert got.tolist() == want, text


# No look-ahead, on the real strategy and real candles. ------------------------------------


def _truncated(cut: pd.Timestamp) -> Callable[[str, str], pd.DataFrame]:
    """What a live bot would hold at `cut`: only candles that had closed by then."""

    def feed(pair: str, timeframe: str) -> pd.DataFrame:
        frame = fixture_candles(pair, timeframe)
        step = pd.Timedelta(seconds=timeframe_seconds(timeframe))
        return frame[frame.index + step <= cut]

    return feed


@pytest.mark.parametrize("candle", [3000, 4321, 6000, 8000])
def test_kinetic_empire_never_reads_the_future(candle: int) -> None:
    plan = build_plan(check(load_file(STRATEGIES / "kinetic_empire.yaml")))
    full = Evaluator(plan, fixture_candles).evaluate("SOL/USDT")
    cut = full.index[candle] + pd.Timedelta("5min")  # the moment candle `candle` closes
    partial = Evaluator(plan, _truncated(cut)).evaluate("SOL/USDT")
    assert len(partial.index) == candle + 1
    for node in plan.market:
        np.testing.assert_array_equal(
            partial.values[node], full.values[node][: candle + 1], err_msg=to_text(node)
        )
    np.testing.assert_array_equal(partial.regime, full.regime[: candle + 1])  # type: ignore[index]


def test_higher_timeframe_values_appear_only_after_their_candle_closes() -> None:
    rows = fixture_candles("SOL/USDT", "5m")
    plan = build_plan(
        check(
            load_text(
                "metadata: {name: t}\ntimeframe: 5m\nindicators:\n  h: close@1h\n"
                "entry:\n  long:\n    a: h > 0\n",
                "t.yaml",
            )
        )
    )
    signals = Evaluator(plan, fixture_candles).evaluate("SOL/USDT")
    hourly = fixture_candles("SOL/USDT", "1h")
    values = signals.rule(plan.strategy.indicators["h"])
    at = rows.index.get_loc(pd.Timestamp("2024-03-01 10:55", tz="UTC"))
    # The 10:55 candle closes at 11:00, with the 10:00 hourly candle: its close is visible.
    assert values[at] == hourly.loc[pd.Timestamp("2024-03-01 10:00", tz="UTC"), "close"]
    # One candle earlier (closing 10:55), only the 09:00 hourly candle had closed.
    assert values[at - 1] == hourly.loc[pd.Timestamp("2024-03-01 09:00", tz="UTC"), "close"]


def test_evaluation_is_deterministic() -> None:
    plan = build_plan(check(load_file(STRATEGIES / "kinetic_empire.yaml")))
    first = Evaluator(plan, fixture_candles).evaluate("ETH/USDT")
    second = Evaluator(plan, fixture_candles).evaluate("ETH/USDT")
    for node in plan.market:
        np.testing.assert_array_equal(first.values[node], second.values[node])


def test_regime_names_and_tables_follow_the_first_class_that_holds() -> None:
    text = """
metadata: {name: regimes}
timeframe: 5m
regime:
  classes:
    up: close > open
    flat: close == open
    down: otherwise
  tables:
    stop_atr: {up: 2.5, flat: 1.0, down: 2.0}
indicators:
  multiplier: stop_atr
entry:
  long:
    rising: regime == "up"
    not_down: regime != "down"
"""
    plan = build_plan(check(load_text(text, "t.yaml")))
    rows = fixture_candles("SOL/USDT", "5m")
    signals = Evaluator(plan, fixture_candles).evaluate("SOL/USDT")
    up = (rows["close"] > rows["open"]).to_numpy()
    flat = (rows["close"] == rows["open"]).to_numpy()
    expected_codes = np.where(up, 0, np.where(flat, 1, 2))
    np.testing.assert_array_equal(signals.regime, expected_codes)
    entry = plan.strategy.entry["long"]
    np.testing.assert_array_equal(signals.rule(entry["rising"]), up)
    np.testing.assert_array_equal(signals.rule(entry["not_down"]), up | flat)
    multiplier = signals.rule(plan.strategy.indicators["multiplier"])
    np.testing.assert_array_equal(multiplier, np.array([2.5, 1.0, 2.0])[expected_codes])


def test_the_regime_has_a_history_for_spotting_changes() -> None:
    text = """
metadata: {name: regime changes}
timeframe: 5m
regime:
  classes:
    up: close > open
    down: otherwise
entry:
  long:
    turned_up: regime[1] == "down" and regime == "up"
"""
    plan = build_plan(check(load_text(text, "t.yaml")))
    rows = fixture_candles("SOL/USDT", "5m")
    up = (rows["close"] > rows["open"]).to_numpy()
    signals = Evaluator(plan, fixture_candles).evaluate("SOL/USDT")
    expected = up & np.concatenate(([False], ~up[:-1]))
    np.testing.assert_array_equal(signals.rule(plan.strategy.entry["long"]["turned_up"]), expected)
