"""Deep and long strategies: refused with a positioned limit, or run — never a crash.

Named definitions are written out where they are used, so chains of them make deep
trees that every later stage (plan, evaluators, explain, replay) walks. The checker
bounds them; anything it accepts must run through every command.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from kinetic_rules.cli.app import main
from kinetic_rules.lang.limits import MAX_EXPANDED_DEPTH

HEAD = "metadata: {name: deep}\ntimeframe: 1h\nmarket: {pairs: [BTC/USDT]}\n"
EXIT = "exit:\n  long:\n    out: close < open\n"


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    return str(path)


def _chain(count: int, reverse: bool = False) -> str:
    lines = [f"  d{i}: d{i - 1} + 1" for i in range(1, count)]
    if reverse:
        lines.reverse()
    body = "\n".join(["  d0: close", *lines])
    return HEAD + f"indicators:\n{body}\nentry:\n  long:\n    a: d{count - 1} > 0\n" + EXIT


def _refused(tmp_path: Path, text: str, words: str) -> str:
    code, _, err = _cli(["validate", _write(tmp_path, text)])
    assert code == 2, err
    assert words in err and "internal error" not in err, err
    return err


@pytest.mark.parametrize("reverse", [False, True], ids=["in order", "outermost first"])
def test_a_chain_of_a_thousand_definitions_is_refused_at_the_definition(
    tmp_path: Path, reverse: bool
) -> None:
    err = _refused(tmp_path, _chain(1000, reverse), "with its named definitions written out")
    assert f"{MAX_EXPANDED_DEPTH} levels" in err
    assert "deep.yaml:" in err and "^" in err  # file:line:col and a caret
    assert err.count("error[too-deep]") == 1  # one error, not one per definition


def test_a_chain_of_conditions_each_using_the_last_is_refused(tmp_path: Path) -> None:
    lines = "\n".join(f"  c{i}: c{i - 1} and close > {i}" for i in range(1, 1200))
    text = HEAD + f"conditions:\n  c0: close > 0\n{lines}\nentry:\n  long:\n    a: c1199\n" + EXIT
    _refused(tmp_path, text, "levels")


def test_definitions_that_double_at_each_step_are_refused_quickly(tmp_path: Path) -> None:
    """d_i = d_(i-1) + d_(i-1): the written-out tree doubles 60 times; checking it must not."""
    lines = "\n".join(f"  d{i}: d{i - 1} * d{i - 1}" for i in range(1, 60))
    text = HEAD + f"indicators:\n  d0: close\n{lines}\nentry:\n  long:\n    a: d59 > 0\n" + EXIT
    err = _refused(tmp_path, text, "parts")
    assert "error[too-large]" in err


def test_a_chain_just_inside_the_limit_runs_through_every_command(
    tmp_path: Path, fixture_store: Path
) -> None:
    path = _write(tmp_path, _chain(MAX_EXPANDED_DEPTH - 3))
    assert _cli(["validate", path])[0] == 0
    store = str(fixture_store)
    commands = [
        ["backtest", path, "--data", store, "--quiet", "--timerange", "20240310-"],
        ["explain", path, "--data", store, "--pair", "BTC/USDT", "--at", "2024-03-12T10:00"],
        ["run", path, "--replay", store, "--quiet", "--timerange", "20240312-"],
    ]
    for argv in commands:
        code, _, err = _cli(argv)
        assert code == 0, err
        assert "internal error" not in err


@pytest.mark.parametrize(
    "expression",
    [
        "(" * 10_000 + "close" + ")" * 10_000 + " > 0",
        " and ".join(["close > 0"] * 10_000),
        "if close > 0 then 1 else " * 2_000 + "0 > 0",
        "not " * 10_000 + "close > 0",
        "-" * 3_000 + "close > 0",
        "abs(" * 70 + "close" + ")" * 70 + " > 0",
        "close" + "[1]" * 200 + " > 0",
    ],
    ids=["parentheses", "and-chain", "if-else", "not-chain", "minus-chain", "calls", "history"],
)
def test_deep_expressions_are_refused_with_their_position(tmp_path: Path, expression: str) -> None:
    text = HEAD + f"entry:\n  long:\n    a: {expression}\n" + EXIT
    code, _, err = _cli(["validate", _write(tmp_path, text)])
    assert code == 2 and "error[syntax]" in err and "deep.yaml:6:8" in err, err[:500]
    assert "internal error" not in err


def test_three_thousand_named_conditions_validate_and_backtest(
    tmp_path: Path, fixture_store: Path
) -> None:
    conditions = "\n".join(f"    a{i}: close > {i}" for i in range(3_000))
    path = _write(tmp_path, HEAD + f"entry:\n  long:\n{conditions}\n" + EXIT)
    assert _cli(["validate", path])[0] == 0
    argv = ["backtest", path, "--data", str(fixture_store), "--quiet", "--timerange", "20240310-"]
    code, _, err = _cli(argv)
    assert code == 0, err
