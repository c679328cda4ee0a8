"""Hypothesis strategies that write whole strategy files, hostile edges included.

Function calls are drawn from the registry itself, so a function added tomorrow is
exercised too; constant arguments are drawn from the edges of what each kind accepts
(0, negatives, the largest window, lists out of order, numbers too large to store).
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

from kinetic_rules.functions import MAX_CANDLES, REGISTRY, ArgKind, Function

PARAMS = {"p_num": 2.0, "p_int": 14, "p_word": "fast"}

COUNTS = ["1", "2", "3", "14", "50", "$p_int"]
EDGE_COUNTS = ["0", "-1", "1.5", str(MAX_CANDLES), str(MAX_CANDLES + 1), "99999999999999999999"]
DURATIONS = ["1h", "2h", "1d", "7d"]
EDGE_DURATIONS = ["90m", "30m", "0h", "1000w", "999999w"]
NUMBERS = ["0", "0.5", "2", "70", "$p_num"]
EDGE_NUMBERS = ["-1", "100", "100.5", "1e308", "1e309", "1e-320", "2.5%"]


def _mostly(good: list[str], edge: list[str], edgy: bool) -> st.SearchStrategy[str]:
    """A value a person would write or, in an edgy file, often one from the edges."""
    return st.sampled_from(good) if not edgy else st.sampled_from(good + edge)


def _functions() -> list[Function]:
    return REGISTRY.all()


def _numbers(edgy: bool) -> st.SearchStrategy[str]:
    return st.one_of(
        _mostly(NUMBERS, EDGE_NUMBERS, edgy),
        st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: f"{abs(x):.6g}"),
    )


def _constant(kind: ArgKind, edgy: bool) -> st.SearchStrategy[str]:
    if kind is ArgKind.INT:
        return _mostly(COUNTS, EDGE_COUNTS, edgy)
    if kind is ArgKind.WINDOW:
        return _mostly(COUNTS + DURATIONS, EDGE_COUNTS + EDGE_DURATIONS, edgy)
    if kind is ArgKind.NUMBER:
        return _numbers(edgy)
    items = st.lists(_numbers(edgy), min_size=0 if edgy else 1, max_size=5)
    ordered = st.lists(st.integers(-50, 150), min_size=1, max_size=5, unique=True).map(sorted)
    return st.one_of(items, ordered.map(lambda xs: [str(x) for x in xs])).map(
        lambda xs: "[" + ", ".join(xs) + "]"
    )


PRICES = ["entry_price * 0.95", "close - 2 * atr(14)", "lowest(low, 24h)"]
LEAVES = ["close", "open", "high", "low", "volume", "$p_num", "1", "0", "-3"]


def _call(
    function: Function,
    number: st.SearchStrategy[str],
    condition: st.SearchStrategy[str],
    edgy: bool,
) -> st.SearchStrategy[str]:
    @st.composite
    def draw_call(draw: st.DrawFn) -> str:
        parts = []
        for arg in function.args:
            if not arg.required and draw(st.booleans()):
                continue  # leave it to its default (later ones become keywords)
            if arg.kind is ArgKind.SERIES:
                value = draw(number)
            elif arg.kind is ArgKind.BOOL_SERIES:
                value = draw(condition)
            else:
                value = draw(_constant(arg.kind, edgy))
            parts.append(f"{arg.name}={value}")
        return f"{function.name}({', '.join(parts)})"

    return draw_call()


def expressions(edgy: bool) -> tuple[st.SearchStrategy[str], st.SearchStrategy[str]]:
    """(numbers, conditions): nested expressions over the registry, with edge constants."""

    def extend_number(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        cond = _conditions(inner, edgy)
        calls = st.sampled_from([f for f in _functions() if f.returns == "number"]).flatmap(
            lambda f: _call(f, inner, cond, edgy)
        )
        return st.one_of(
            calls,
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(inner, _mostly(["0", "1", "3", "$p_int"], ["99999999", "1e309"], edgy)).map(
                lambda t: f"({t[0]})[{t[1]}]"
            ),
            st.tuples(cond, inner, inner).map(lambda t: f"(if {t[0]} then {t[1]} else {t[2]})"),
            inner.map(lambda x: f"({x})@1d"),
            inner.map(lambda x: f"-({x})"),
        )

    numbers = st.recursive(st.sampled_from(LEAVES), extend_number, max_leaves=6)
    return numbers, _conditions(numbers, edgy)


def _conditions(numbers: st.SearchStrategy[str], edgy: bool) -> st.SearchStrategy[str]:
    compare = st.tuples(numbers, st.sampled_from(["<", ">", "<=", ">=", "==", "!="]), numbers).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    )
    bool_calls = st.sampled_from([f for f in _functions() if f.returns == "bool"]).flatmap(
        lambda f: _call(f, numbers, compare, edgy)
    )
    base = st.one_of(compare, bool_calls, st.just('$p_word == "fast"'), st.just("true"))
    return st.one_of(
        base,
        st.tuples(base, st.sampled_from(["and", "or"]), base).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
        base.map(lambda c: f"not ({c})"),
    )


def _quoted(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid YAML scalar, whatever it holds


@st.composite
def strategy_files(draw: st.DrawFn) -> str:
    """The text of one strategy file, valid or not."""
    edgy = draw(st.booleans())  # constants from the edges in expressions
    odd = draw(st.booleans())  # edge values in the file's own numeric fields
    futures = draw(st.booleans())
    numbers, conditions = expressions(edgy)
    prices = st.one_of(st.sampled_from(PRICES), numbers)
    trade = st.one_of(
        conditions,
        st.sampled_from(["profit > 2%", "bars_held >= $p_int", "profit < -1%", "bars_held > 3h"]),
    )
    market = "futures" if futures else "spot"
    lines = [
        "metadata: {name: generated}",
        f"timeframe: {draw(st.sampled_from(['1h', '1h', '5m']))}",
        f"market: {{type: {market}, pairs: [BTC/USDT, ETH/USDT]}}",
        "informative: {timeframes: [1d], pairs: [ETH/USDT]}",
        "params:",
        f"  p_num: {{value: {draw(_mostly(['2', '0.5', '1%'], ['.nan', '1e309', '11'], odd))},"
        f" min: -10, max: 10}}",
        "  p_int: {value: 14, min: 1, max: 100}",
        "  p_word: {value: fast, choices: [fast, slow]}",
        "indicators:",
        f"  ind_a: {_quoted(draw(numbers))}",
        f"  ind_b: {_quoted(draw(numbers))} ",
        "  ind_eth: close[ETH/USDT] / close",
        "conditions:",
        f"  cond_a: {_quoted(draw(conditions))}",
        "regime:",
        f"  classes: {{up: {_quoted(draw(conditions))}, otherwise: 'true'}}",
        f"  max_open_trades: {{up: 2, otherwise: {draw(st.sampled_from(['0', '1']))}}}",
        f"  tables: {{mult: {{up: {draw(_mostly(['0.5', '2'], ['0', '-1', '1e308'], odd))}, "
        "otherwise: 1}}",
        "entry:",
        "  long:",
        f"    first: {_quoted(draw(conditions))}",
        "    named: cond_a or ind_a > ind_b",
    ]
    if futures:
        lines += ["  short:", f"    first: {_quoted(draw(conditions))}"]
    if draw(st.booleans()):
        lines += [f"  priority: {_quoted(draw(numbers))}", "  cooldown: 2h"]
    if draw(st.booleans()):
        lines += [
            "protections:",
            f"  guard: {{active: {_quoted(draw(conditions))}, block_entries: true}}",
        ]
    lines += ["exit:", "  long:", f"    out: {_quoted(draw(trade))}"]
    if futures:
        lines += ["  short:", f"    out: {_quoted(draw(trade))}"]
        lines += [
            f"leverage: {_quoted(draw(_mostly(['2', '1', 'mult'], ['0', '-3', '1e9'], odd)))}"
        ]
    if draw(st.booleans()):
        lines += [
            "stoploss:",
            f"  initial: {_quoted(draw(st.one_of(st.sampled_from(PRICES), numbers)))}",
            f"  max_distance: {draw(_mostly(['3%', '0.5'], ['0', '-1%', '1e309'], odd))}",
            "  trailing:",
            f"    trail: {{activate: {_quoted(draw(trade))}, level: {_quoted(draw(prices))}}}",
        ]
    if draw(st.booleans()):
        lines += [
            "take_profit:",
            f"  half: {{when: {_quoted(draw(trade))}, "
            f"close: {draw(_mostly(['50%', '1'], ['0', '2', '-5%'], odd))}}}",
        ]
    stake = draw(_mostly(["0.01", "1%", "mult * 1%"], ["0", "-1", "1e300", "close"], odd))
    lines += ["sizing:", f"  stake: {_quoted(stake)}"]
    if draw(st.booleans()):
        lines += [f"  max_stake: {draw(_mostly(['5%', '1'], ['0', '-1', '.nan'], odd))}"]
    if draw(st.booleans()):
        lines += [f"portfolio: {{max_open_trades: {draw(st.sampled_from(['0', '1', '3']))}}}"]
    balance = draw(_mostly(["10000", "0.01"], ["1e15", "1e16", ".inf"], odd))
    fee = draw(_mostly(["0.1%", "0"], ["0.49", "0.5", ".nan"], odd))
    lines += ["backtest:", f"  starting_balance: {balance}", f"  fee: {fee}"]
    return "\n".join(lines) + "\n"
