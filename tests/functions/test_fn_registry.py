"""Every registered function is complete: documented, exemplified, with sane defaults."""

from __future__ import annotations

import re
from typing import Any

import pytest

import kinetic_rules.functions as functions_package
from kinetic_rules.functions import REGISTRY, ArgKind, Function
from kinetic_rules.functions.docs import CATEGORY_ORDER

REQUIRED = {
    # the compiler needs these first
    "ema",
    "sma",
    "rsi",
    "roc",
    "atr",
    "mean",
    "pct_change",
    "crossed_above",
    "crossed_below",
    "all",
    "any",
    "count",
    "latch",
    "abs",
    "min",
    "max",
    "clamp",
    "log",
    "step",
    # the rest of the brief
    "wma",
    "true_range",
    "macd",
    "macd_signal",
    "macd_hist",
    "adx",
    "plus_di",
    "minus_di",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "bb_width",
    "keltner_upper",
    "keltner_middle",
    "keltner_lower",
    "vwap",
    "obv",
    "stoch_k",
    "stoch_d",
    "sum",
    "lowest",
    "highest",
    "std",
    "percentile_rank",
    "zscore",
    "correlation",
    "change",
    "bars_since",
    "sqrt",
    "volume_profile_poc",
    "volume_profile_vah",
    "volume_profile_val",
}
CANDLE_FIELDS = {"open", "high", "low", "close", "volume"}


def test_importing_the_package_registers_everything() -> None:
    assert functions_package.REGISTRY is REGISTRY
    missing = REQUIRED - set(REGISTRY.names())
    assert not missing, f"not registered: {sorted(missing)}"


def test_documented(function: Function) -> None:
    assert function.doc.strip() and function.doc[0].isupper(), "doc: a sentence"
    assert function.category in CATEGORY_ORDER
    assert function.returns in ("number", "bool")
    assert set(function.inputs) <= CANDLE_FIELDS
    for arg in function.args:
        assert arg.doc.strip(), f"{arg.name} has no doc"
        assert "|" not in arg.doc, "a | would break the markdown table"


def test_example_is_a_named_expression_calling_the_function(function: Function) -> None:
    match = re.fullmatch(r"([a-z_][a-z0-9_]*): (.+)", function.example)
    assert match, f"example should read 'name: expression', got {function.example!r}"
    assert re.search(rf"\b{function.name}\(", match.group(2))


def test_defaults_are_valid(function: Function) -> None:
    seen_optional = False
    for arg in function.args:
        if arg.required:
            assert not seen_optional, f"required {arg.name} after an optional argument"
            continue
        seen_optional = True
        assert not arg.kind.is_series and arg.kind is not ArgKind.LIST
        if arg.kind in (ArgKind.INT, ArgKind.WINDOW):
            assert isinstance(arg.default, int), arg.name
        else:
            assert isinstance(arg.default, float), arg.name
        if arg.minimum is not None:
            assert arg.default >= arg.minimum, arg.name
    for arg in function.args:
        if arg.kind in (ArgKind.INT, ArgKind.WINDOW):
            assert arg.minimum is not None and arg.minimum >= 1, f"{arg.name} needs a minimum"


def test_warmup_is_a_whole_number_of_candles(kit: Any, btc: Any, function: Function) -> None:
    args = kit.sample_args(function, btc)
    given = kit.constants(function, args)
    assert isinstance(function.warmup(given), int)
    assert function.warmup(given) >= 0
    explicit_defaults = {a.name: a.default for a in function.args if not a.required}
    required_only = {k: v for k, v in given.items() if k not in explicit_defaults}
    # The checker may pass only what the strategy wrote: defaults are filled in.
    assert function.warmup(required_only) == function.warmup(given)


@pytest.mark.parametrize("name", ["ema", "rsi", "atr", "adx", "macd"])
def test_recursive_warmups_cover_convergence(name: str) -> None:
    function = REGISTRY.get(name)
    assert function is not None
    assert function.warmup({"period": 14, "source": 0}) >= 3 * 14 or name == "macd"
    if name == "macd":
        assert function.warmup({}) >= 3 * 26
