"""Numbers carry units: the algebra, the checker's verdicts, params and `--set`, declarations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.cli.app import main
from kinetic_rules.errors import Diagnostic, Snippet, Source
from kinetic_rules.functions import REGISTRY
from kinetic_rules.lang import ast
from kinetic_rules.lang.names import CANDLE_FIELDS, CONTEXT_NAMES
from kinetic_rules.lang.parser import parse
from kinetic_rules.lang.unit_check import ParamUnit, UnitChecker
from kinetic_rules.spec.schema import strategy_schema
from kinetic_rules.units import Unit, divide, multiply, unify

ROOT = Path(__file__).resolve().parents[2]
EMPIRE = ROOT / "strategies" / "kinetic_empire.yaml"

HEADER = """\
metadata: {name: units}
timeframe: 5m
params:
  hot: {value: 80}
  share: {value: 2%}
  level: {value: 1.5}
"""


def validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, *flags: str
) -> tuple[int, str]:
    path = tmp_path / "s.yaml"
    path.write_text(HEADER + body)
    code = main(["validate", str(path), *flags])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def entry(*conditions: str) -> str:
    lines = "".join(f"    c{i}: {text}\n" for i, text in enumerate(conditions))
    return "entry:\n  long:\n" + lines


# the algebra ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "product", "quotient"),
    [
        (Unit.PRICE, Unit.PRICE, Unit.ANY, Unit.RATIO),
        (Unit.PRICE, Unit.RATIO, Unit.PRICE, Unit.PRICE),
        (Unit.NUMBER, Unit.POINTS, Unit.POINTS, Unit.ANY),
        (Unit.PRICE, Unit.VOLUME, Unit.MONEY, Unit.ANY),
        (Unit.MONEY, Unit.PRICE, Unit.ANY, Unit.VOLUME),
        (Unit.MONEY, Unit.VOLUME, Unit.ANY, Unit.PRICE),
        (Unit.RATIO, Unit.RATIO, Unit.RATIO, Unit.RATIO),
        (Unit.POINTS, Unit.NUMBER, Unit.POINTS, Unit.NUMBER),  # (adx() - 20) / 30 rescales
    ],
)
def test_products_and_quotients_combine_units(
    a: Unit, b: Unit, product: Unit, quotient: Unit
) -> None:
    assert multiply(a, b) == product
    assert divide(a, b) == quotient


def test_a_plain_number_takes_the_unit_it_meets_and_unlike_units_do_not_mix() -> None:
    assert unify(Unit.NUMBER, Unit.PRICE) == Unit.PRICE
    assert unify(Unit.POINTS, Unit.NUMBER) == Unit.POINTS
    assert unify(Unit.ANY, Unit.PRICE) == Unit.ANY
    assert unify(Unit.POINTS, Unit.RATIO) is None
    assert unify(Unit.PRICE, Unit.RATIO) is None
    assert unify(Unit.PERCENT, Unit.POINTS) is None


# the checker -----------------------------------------------------------------------------


def test_a_percentage_against_rsi_is_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = validate(tmp_path, capsys, entry("45 < rsi(close, 14) < 65%"))
    assert code == 2
    assert "rsi(close, 14) is on a 0–100 scale; 65% means 0.65 — write 65" in text
    assert "s.yaml:9:31: error[unit]" in text  # at the percentage itself
    assert "Traceback" not in text


def test_a_percentage_against_roc_says_roc_is_in_percent_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = validate(tmp_path, capsys, entry("roc(close, 12) > 2%"))
    assert code == 2
    assert "roc(close, 12) is in percent points (5 means 5%); 2% means 0.02 — write 2" in text


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("close > 1%", "close is a price, but 1% is the ratio 0.01"),
        ("min(close, rsi(close, 14)) > 0", "close is a price, but rsi(close, 14) is on a 0–100"),
        ("crossed_above(rsi(close, 14), ema(close, 20))", "ema(close, 20) is a price"),
        ("close / ema(close, 20) - 1 > volume", "is a ratio (0.025 is 2.5%), but volume is"),
        ("(if close > open then rsi(close, 14) else 2%) > 0", "2% means 0.02 — write 2"),
        ("step(adx(), [20%, 30%], [1, 2]) > 1", "[20%, 30%] holds ratios"),
        ("close > volume_profile_vah(7d, bin_pct=2%)", "'bin_pct' is in percent points"),
        ("rsi(close, 14) < $share", "$share is 2%, which means 0.02"),
        ("volume > quote_volume", "volume is an amount of the base asset, but quote_volume"),
    ],
)
def test_mixing_units_that_cannot_mix_is_a_positioned_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: str, words: str
) -> None:
    code, text = validate(tmp_path, capsys, entry(rule))
    assert code == 2
    assert "error[unit]" in text and words in text
    assert re.search(r"s\.yaml:9:\d+: error\[unit\]", text)


def test_units_that_fit_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = (
        "close > 0",
        "close - 2.0 * atr(14) > low",
        "close > ema(close, 50) * (1 + 2%)",
        "close / ema(close, 50) - 1 > 2%",
        "pct_change(close, 12) * 100 > roc(close, 12)",
        "rsi(close, 14) / 100 < 65%",
        "(adx() - 20) / 30 > 0.5",
        "volume * close > quote_volume",
        "quote_volume / close >= volume",
        "min(open, close) > ema(close, 20)",
        "count(close > open, 12) >= 8",
        "bars_since(close > open) < 1h",
        "percentile_rank(atr(14), 7d) < $hot",
        "std(pct_change(close), 24h) > $share",
        "zscore(close, 100) < -2",
        "mean(volume, 24h) * $level < volume",
    )
    body = (
        entry(*rules)
        + "exit:\n  long:\n    take: profit > 2% or bars_held > 24h\n"
        + "stoploss:\n  initial: entry_price * (1 - 3%)\n"
        + "sizing:\n  stake: min(2% / (atr(14) / close), 20%)\n"
    )
    code, text = validate(tmp_path, capsys, body)
    assert code == 0, text


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ("stoploss:\n  initial: 3%\n", "stoploss.initial is a price, but this is a ratio"),
        ("sizing:\n  stake: close * 2\n", "sizing.stake is a ratio (0.025 is 2.5%), but this"),
    ],
)
def test_a_section_whose_result_has_the_wrong_unit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, words: str
) -> None:
    code, text = validate(tmp_path, capsys, entry("close > open") + section)
    assert code == 2
    assert words in text


# params and --set ------------------------------------------------------------------------


def test_set_with_a_percentage_on_a_percent_points_param_is_refused() -> None:
    assert main(["validate", str(EMPIRE), "--set", "roc_threshold=2%"]) == 2
    assert main(["validate", str(EMPIRE), "--set", "roc_threshold=2"]) == 0


def test_set_explains_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    main(["validate", str(EMPIRE), "--set", "roc_threshold=2%"])
    text = capsys.readouterr().err
    assert "--set roc_threshold=2%: $roc_threshold is in percent points (5 means 5%)" in text
    assert "write --set roc_threshold=2" in text


def test_a_param_without_a_unit_takes_the_unit_of_what_it_is_compared_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = entry("percentile_rank(atr(14), 7d) > $hot")
    code, text = validate(tmp_path, capsys, body, "--set", "hot=90%")
    assert code == 2
    assert "$hot is on a 0–100 scale; 90% means 0.9" in text
    assert validate(tmp_path, capsys, body, "--set", "hot=90")[0] == 0


def test_a_ratio_param_accepts_a_percentage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = entry("std(pct_change(close), 24h) > $share")
    assert validate(tmp_path, capsys, body, "--set", "share=3%")[0] == 0


def test_a_declared_unit_is_checked_against_the_value_and_every_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "metadata: {name: units}\ntimeframe: 5m\nparams:\n"
        "  floor: {value: 40%, unit: points}\n"
        "  cap: {value: 70, unit: points}\n"
        "entry:\n  long:\n    a: rsi(close, 14) > $floor\n    b: close > $cap\n"
    )
    code = main(["validate", str(path)])
    text = capsys.readouterr().err
    assert code == 2
    assert "s.yaml:4:18: error[unit]: $floor is on a 0–100 scale; 40% means 0.4" in text
    assert "close is a price, but $cap is on a 0–100 scale" in text


def test_the_schema_offers_the_param_units() -> None:
    param = strategy_schema()["$defs"]["Param"]["properties"]["unit"]
    units = next(option["enum"] for option in param["anyOf"] if "enum" in option)
    assert {"price", "ratio", "points", "percent", "count"} <= set(units)
    assert "2.5% is 0.025" in param["description"]


# declarations ----------------------------------------------------------------------------


def test_every_function_and_built_in_name_declares_its_unit() -> None:
    for function in REGISTRY.all():
        assert function.unit is not None, function.name
        if isinstance(function.unit, str):
            assert function.arg(function.unit) is not None, function.name
    for name in [*CANDLE_FIELDS.values(), *CONTEXT_NAMES.values()]:
        assert name.unit is not Unit.ANY, name.name


def test_functions_lists_each_unit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["functions"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"^rsi\(source, period=14\)\s+points\s", listing, re.M)
    assert re.search(r"^ema\(source, period\)\s+same as source\s", listing, re.M)
    assert main(["functions", "roc"]) == 0
    assert "gives: a number: percent points (5 means 5%)" in capsys.readouterr().out
    assert main(["functions", "--format", "json", "atr"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["unit"] == "price"


# properties ------------------------------------------------------------------------------

ATOMS = ["close", "volume", "quote_volume", "profit", "bars_held", "2", "0.5", "2.5%", "24h"]
ATOMS += ["$p0", "$p1", "d0", "d1", "nowhere", "regime", "true"]
FUNCTIONS = [*REGISTRY.names(), "correlated_exposure", "no_such_function"]


def expressions() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        ops = st.sampled_from(["+", "-", "*", "/", "<", ">=", "and", "or", "=="])
        binary = st.tuples(inner, ops, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        unary = st.tuples(st.sampled_from(["-", "not "]), inner).map(lambda t: f"({t[0]}{t[1]})")
        branch = st.tuples(inner, inner, inner).map(
            lambda t: f"(if {t[0]} then {t[1]} else {t[2]})"
        )
        postfix = st.tuples(inner, st.sampled_from(["[1]", "@1h", "[BTC/USDT]"])).map("".join)
        listed = st.lists(inner, max_size=3).map(lambda items: f"[{', '.join(items)}]")
        call = st.tuples(st.sampled_from(FUNCTIONS), st.lists(inner | listed, max_size=4)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        )
        return binary | unary | branch | postfix | call

    return st.recursive(st.sampled_from(ATOMS), extend, max_leaves=12)


def tree(text: str) -> ast.Node:
    return parse(Snippet(text, Source("t.yaml", text)))


def measure(rule: str, d0: str, d1: str, names: tuple[str, str]) -> tuple[Unit, list[str]]:
    found: list[Diagnostic] = []
    definitions = {names[0]: tree(d0), names[1]: tree(d1)}
    params = {"p0": ParamUnit(Unit.NUMBER, "1"), "p1": ParamUnit(Unit.RATIO, "2%")}
    checker = UnitChecker(definitions, params, frozenset(), found.append)
    unit = checker.check(tree(rule))
    return unit, sorted(d.code for d in found)


def rename(text: str, names: tuple[str, str]) -> str:
    text = re.sub(r"\bd0\b", names[0], text)
    return re.sub(r"\bd1\b", names[1], text)


@settings(max_examples=150, deadline=None)
@given(expressions(), expressions(), expressions())
def test_unit_inference_never_crashes_and_ignores_what_definitions_are_called(
    rule: str, d0: str, d1: str
) -> None:
    plain = measure(rule, d0, d1, ("d0", "d1"))
    other = ("a_much_longer_name", "z")
    renamed = measure(rename(rule, other), rename(d0, other), rename(d1, other), other)
    assert plain == renamed


def test_a_param_declared_a_plain_number_is_not_given_a_unit_by_its_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "metadata: {name: units}\ntimeframe: 5m\nparams:\n"
        "  level: {value: 50.0, unit: number}\n"
        "entry:\n  long:\n    a: rsi(close, 14) > $level\n"
    )
    assert main(["validate", str(path), "--set", "level=50%"]) == 0


def test_one_param_used_for_two_different_units_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = validate(tmp_path, capsys, entry("rsi(close, 14) > $level", "close > $level"))
    assert code == 2
    assert "$level is used with close, a price, but also with rsi(close, 14), on a 0–100" in text
    assert "use two params, or give it a `unit:`" in text
