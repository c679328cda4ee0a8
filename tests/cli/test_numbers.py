"""Numbers that would crash or silently mislead a run are refused where they enter.

Function arguments keep the limits the registry declares; NaN, infinities and numbers
too large to store are refused in literals, params, --set, the spec's numeric fields
and numeric flags, each with its position (or its flag).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.cli.app import main
from kinetic_rules.functions import MAX_CANDLES, REGISTRY, ArgKind
from tests.conftest import STRATEGIES

KE = str(STRATEGIES / "kinetic_empire.yaml")
HEAD = "metadata: {name: numbers}\ntimeframe: 1h\nmarket: {pairs: [BTC/USDT]}\n"


def _cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def _validate(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "numbers.yaml"
    path.write_text(text)
    return _cli(["validate", str(path)])


def _entry(condition: str) -> str:
    return HEAD + f"entry:\n  long:\n    a: {condition}\n"


@pytest.mark.parametrize(
    ("condition", "at", "words"),
    [
        ("step(close, [3, 2, 1], [1, 2, 3]) > 1", "[3", "must increase from left to right"),
        ("step(close, [1, 2, 3], [1, 2]) > 1", "[1, 2]", "needs one item per item of"),
        ("step(close, [], []) > 1", "[]", "needs at least one item"),
        ("step(close, [1e308 * 10], [1]) > 1", "1e308", "too large"),
        ("close > volume_profile_vah(7d, value_area=1000)", "1000", "must be at most 100"),
        ("close > volume_profile_poc(7d, bin_pct=0)", "0)", "must be at least 0.01"),
        ("close > ema(close, 0)", "0)", "must be at least 1"),
        (f"close > ema(close, {MAX_CANDLES + 1})", "2", f"must be at most {MAX_CANDLES}"),
        ("close > mean(close, 999999w)", "999999w", f"must be at most {MAX_CANDLES}"),
        ("close > bb_upper(close, 20, 1e300)", "1e300", "must be at most 100"),
        ("close[99999999] > 1", "99999999", "a history offset is at most"),
        ("close > 1e308 * 10", "1e308", "too large to use"),
        ("close > 1e309", "1e309", "too large to be a number"),
        ("close > 1e309%", "1e309", "too large to be a number"),
    ],
)
def test_a_constant_outside_its_limits_is_refused_at_its_position(
    tmp_path: Path, condition: str, at: str, words: str
) -> None:
    code, err = _validate(tmp_path, _entry(condition))
    assert code == 2, err
    column = len("    a: ") + condition.index(at) + 1
    assert f"numbers.yaml:6:{column}:" in err and words in err, err
    assert "internal error" not in err


def test_every_argument_limit_shows_in_the_function_reference() -> None:
    code, out = 0, io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["functions", "step"])
    assert code == 0
    assert "each item larger than the one before" in out.getvalue()
    assert "as many items as `thresholds`" in out.getvalue()
    for function in REGISTRY.all():
        for arg in function.args:
            if arg.kind in (ArgKind.INT, ArgKind.WINDOW):
                assert arg.minimum is not None and arg.maximum == MAX_CANDLES, function.name
            if arg.kind is ArgKind.LIST:
                assert f"1 to {arg.max_items} items" in arg.limits()


@settings(max_examples=40, deadline=None)
@given(
    thresholds=st.lists(st.integers(-5, 5), min_size=1, max_size=4),
    values=st.lists(st.integers(0, 3), min_size=1, max_size=4),
)
def test_a_step_table_validate_accepts_is_one_the_function_accepts(
    thresholds: list[int], values: list[int]
) -> None:
    """The checker's limits and the implementation's own check agree, both ways."""
    from kinetic_rules.functions.math import check_step_table

    step = REGISTRY.get("step")
    assert step is not None
    as_floats = tuple(float(t) for t in thresholds), tuple(float(v) for v in values)
    spec_ok = (
        step.args[1].problem(as_floats[0]) is None
        and step.args[2].problem(as_floats[1]) is None
        and not step.list_problems({"thresholds": as_floats[0], "values": as_floats[1]})
    )
    try:
        check_step_table(*as_floats)
        impl_ok = True
    except ValueError:
        impl_ok = False
    assert spec_ok == impl_ok


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e309", "inf%", "1e400%"])
def test_set_refuses_values_that_would_slip_past_a_params_bounds(value: str) -> None:
    code, err = _cli(["validate", KE, "--set", f"stop_atr={value}"])
    assert code == 2
    assert f"--set stop_atr={value}" in err and "is not a number" in err, err


@pytest.mark.parametrize(
    ("yaml", "line"),
    [
        ("params:\n  x: {value: 1e309}\n", 5),
        ("params:\n  x: {value: 1, min: .nan}\n", 5),
        ("params:\n  x: {value: 1, max: .inf}\n", 5),
        ("backtest: {starting_balance: .inf}\n", 4),
        ("backtest: {starting_balance: 1e16}\n", 4),
        ("backtest: {fee: .nan}\n", 4),
        ("backtest: {fee: '1e309'}\n", 4),
        ("backtest: {slippage: -1%}\n", 4),
        ("regime:\n  classes: {all: 'true'}\n  tables: {mult: {all: .nan}}\n", 6),
        ("portfolio: {max_open_trades: 100000000000000000000000}\n", 4),
        ("stoploss: {initial: close * 0.9, max_distance: .nan}\n", 4),
        ("sizing:\n  kelly: {lookback: 1e309}\n", 5),
        ("indicators:\n  big: 1e309\n", 5),
    ],
)
def test_spec_numbers_refuse_nan_infinity_and_overflow(
    tmp_path: Path, yaml: str, line: int
) -> None:
    code, err = _validate(tmp_path, HEAD + yaml + "entry:\n  long:\n    a: close > open\n")
    assert code == 2, err
    assert f"numbers.yaml:{line}:" in err, err
    assert "internal error" not in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["trades", "--limit", "99999999999999999999999"], "argument --limit"),
        (["trades", "--limit", "nan"], "argument --limit"),
        (["download", "--pairs", "BTC/USDT", "--days", "-1"], "--days must be from 1 to 36500"),
        (
            ["download", "--pairs", "BTC/USDT", "--days", "99999999999"],
            "--days must be from 1 to 36500",
        ),
        (["download", "--pairs", "BTC/USDT", "--days", "1e309"], "argument --days"),
        (["run", KE, "--replay", ".", "--speed", "nan"], "--speed nan"),
        (["run", KE, "--replay", ".", "--speed", "1e-300"], "--speed 1e-300"),
    ],
)
def test_numeric_flags_name_the_flag_and_exit_2(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse refuses a flag before any work
        code = int(stop.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and words in err, err
    assert "internal error" not in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["backtest", KE, "--timerange", "99991231-"], "not between 1970 and 2200"),
        (["backtest", KE, "--timerange", "9999999999-"], "not between 1970 and 2200"),
        (["run", KE, "--replay", ".", "--timerange", "19600101-"], "not between 1970 and 2200"),
        (["explain", KE, "--pair", "BTC/USDT", "--at", "9999-12-31"], "not between 1970 and 2200"),
        (["explain", KE, "--pair", "BTC/USDT", "--at", "nan"], "--at 'nan' is not a time"),
        (["explain", KE, "--pair", "BTC/USDT", "--at", "0001-01-01"], "not between 1970 and 2200"),
    ],
)
def test_times_beyond_where_candles_can_be_are_refused(
    argv: list[str], words: str, tmp_path: Path
) -> None:
    store = [] if argv[0] == "run" else ["--data", str(tmp_path)]
    code, err = _cli([*argv, *store])
    assert code == 2 and words in err, err
    assert "internal error" not in err
