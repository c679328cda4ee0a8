"""The grammar: precedence, associativity, postfix contexts, errors, and the round trip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.errors import Snippet, Source, StrategyError
from kinetic_rules.lang import ast
from kinetic_rules.lang.parser import MAX_DEPTH, parse
from kinetic_rules.lang.printer import to_text


def p(text: str) -> ast.Node:
    return parse(Snippet(text, Source("t.yaml", text)))


def n(value: float) -> ast.Number:
    return ast.Number(value)


def name(x: str) -> ast.Name:
    return ast.Name(x)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("1 + 2 * 3", ast.Binary("+", n(1), ast.Binary("*", n(2), n(3)))),
        ("1 - 2 - 3", ast.Binary("-", ast.Binary("-", n(1), n(2)), n(3))),
        ("8 / 4 / 2", ast.Binary("/", ast.Binary("/", n(8), n(4)), n(2))),
        ("-a * b", ast.Binary("*", ast.Unary("-", name("a")), name("b"))),
        ("a or b and c", ast.Binary("or", name("a"), ast.Binary("and", name("b"), name("c")))),
        ("not a and b", ast.Binary("and", ast.Unary("not", name("a")), name("b"))),
        ("not a < b", ast.Unary("not", ast.Compare(name("a"), (("<", name("b")),)))),
        (
            "45 < rsi < 65",
            ast.Compare(n(45), (("<", name("rsi")), ("<", n(65)))),
        ),
        (
            "a + 1 > b * 2",
            ast.Compare(
                ast.Binary("+", name("a"), n(1)), ((">", ast.Binary("*", name("b"), n(2))),)
            ),
        ),
        (
            "if a then 1 else if b then 2 else 3",
            ast.IfElse(name("a"), n(1), ast.IfElse(name("b"), n(2), n(3))),
        ),
        ("2.5%", ast.Percent(2.5)),
        ("24h", ast.Duration(24, "h")),
        ("close[3]", ast.History(name("close"), n(3))),
        ("close@1h", ast.Context(name("close"), "1h", None)),
        ("close[BTC/USDT]", ast.Context(name("close"), None, "BTC/USDT")),
        ("close@1d[BTC/USDT]", ast.Context(name("close"), "1d", "BTC/USDT")),
        ("close[BTC/USDT]@1d", ast.Context(name("close"), "1d", "BTC/USDT")),
        ("close@1h[1]", ast.History(ast.Context(name("close"), "1h", None), n(1))),
        ("close[1]@1h", ast.Context(ast.History(name("close"), n(1)), "1h", None)),
        ("close[1000SATS/USDT]", ast.Context(name("close"), None, "1000SATS/USDT")),
        ("close[BTC/USDT:USDT]", ast.Context(name("close"), None, "BTC/USDT:USDT")),
        ("x[$lag]", ast.History(name("x"), ast.Param("lag"))),
        ("ema(close, 50)", ast.Call("ema", (name("close"), n(50)))),
        (
            "latch(set=a, reset=b)",
            ast.Call("latch", (), (("set", name("a")), ("reset", name("b")))),
        ),
        (
            "step(s, [60, 70], [5, 10])",
            ast.Call("step", (name("s"), ast.ListLit((n(60), n(70))), ast.ListLit((n(5), n(10))))),
        ),
        ("regime == 'bull'", ast.Compare(name("regime"), (("==", ast.String("bull")),))),
        ("true and false", ast.Binary("and", ast.Bool(True), ast.Bool(False))),
        ("android", name("android")),  # a keyword prefix is still a name
    ],
)
def test_precedence_and_shapes(text: str, tree: ast.Node) -> None:
    assert p(text) == tree


def test_spans_point_into_the_file() -> None:
    text = "entry: close > ema(close, 50)"
    snippet = Snippet(text[7:], Source("f.yaml", text), base=7)
    tree = parse(snippet)
    assert isinstance(tree, ast.Compare)
    call = tree.rest[0][1]
    assert (call.span.line, call.span.column) == (1, 16)
    assert text[call.span.start : call.span.end] == "ema(close, 50)"


def test_equal_subtrees_are_equal_keys_wherever_written() -> None:
    a, b = p("ema(close, 50)"), p("  ema( close,50 )")
    assert a == b and hash(a) == hash(b)
    assert a.span != b.span


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty expression"),
        ("close >", "ends too early"),
        ("close = open", "unexpected '='"),
        ("a && b", "unexpected character '&'"),
        ("(1 + " * 100 + "1" + ")" * 100, "nested deeper"),
        ("(1+" * 990 + "1" + ")" * 990, "nested deeper"),  # past Python's recursion limit
        ("((((1))))" + " + 2", "NOT AN ERROR"),
        ("x" * 5000, "longer than"),
    ],
)
def test_errors_are_positioned_diagnostics(text: str, message: str) -> None:
    if message == "NOT AN ERROR":  # parentheses alone add no depth
        assert p(text) == ast.Binary("+", n(1), n(2))
        return
    with pytest.raises(StrategyError) as raised:
        p(text)
    (diagnostic,) = raised.value.diagnostics
    assert message in diagnostic.message
    assert diagnostic.span.path == "t.yaml"


def test_a_long_flat_chain_is_not_too_deep_for_the_parser_but_is_rejected_cleanly() -> None:
    text = " + ".join(["1"] * (MAX_DEPTH + 5))
    with pytest.raises(StrategyError, match="nested deeper"):
        p(text)


# The round trip: printing a tree and parsing it back gives the same tree. ----------------

NAMES = st.sampled_from(["close", "volume", "ema50", "a", "b_2", "android", "orange"])
PAIRS = st.sampled_from(["BTC/USDT", "ETH/USDT", "1000SATS/USDT", "BTC/USDT:USDT"])
TIMEFRAMES = st.sampled_from(["5m", "1h", "4h", "1d"])
leaves = st.one_of(
    st.floats(min_value=0, max_value=1e6, allow_nan=False).map(ast.Number),
    st.integers(min_value=0, max_value=500).map(lambda i: ast.Number(float(i))),
    st.floats(min_value=0, max_value=100, allow_nan=False).map(ast.Percent),
    st.builds(ast.Duration, st.integers(1, 99), st.sampled_from("mhdw")),
    st.booleans().map(ast.Bool),
    NAMES.map(ast.Name),
    NAMES.map(ast.Param),
    st.sampled_from(["bull", "bear"]).map(ast.String),
)


def _context(operand: ast.Node, tf: str | None, pair: str | None) -> ast.Node:
    # The parser merges `@tf` and `[PAIR]` into an inner Context when the slot is free,
    # so only unmerged shapes are generated: never a Context directly inside another.
    if (tf is None and pair is None) or isinstance(operand, ast.Context):
        return operand
    return ast.Context(operand, tf, pair)


def _extend(children: st.SearchStrategy[ast.Node]) -> st.SearchStrategy[ast.Node]:
    return st.one_of(
        st.builds(ast.Unary, st.sampled_from(["-", "not"]), children),
        st.builds(
            ast.Binary, st.sampled_from(["+", "-", "*", "/", "and", "or"]), children, children
        ),
        st.builds(
            ast.Compare,
            children,
            st.lists(
                st.tuples(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), children),
                min_size=1,
                max_size=3,
            ).map(tuple),
        ),
        st.builds(ast.IfElse, children, children, children),
        st.builds(ast.History, children, st.integers(0, 50).map(lambda i: ast.Number(float(i)))),
        st.builds(
            _context, children, st.one_of(st.none(), TIMEFRAMES), st.one_of(st.none(), PAIRS)
        ),
        st.builds(
            ast.Call,
            st.sampled_from(["ema", "mean", "f"]),
            st.lists(children, max_size=3).map(tuple),
            st.lists(st.tuples(st.sampled_from(["window", "k"]), children), max_size=1).map(tuple),
        ),
        st.builds(ast.ListLit, st.lists(children, max_size=3).map(tuple)),
    )


trees = st.recursive(leaves, _extend, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(trees)
def test_print_then_parse_gives_the_same_tree(tree: ast.Node) -> None:
    assert p(to_text(tree)) == tree
