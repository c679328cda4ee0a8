"""`kinetic-rules validate` as CI pipelines use it: exit codes, JSON, and hostile input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kinetic_rules.cli.app import main
from tests.conftest import STRATEGIES

KINETIC_EMPIRE = str(STRATEGIES / "kinetic_empire.yaml")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_shipped_strategy_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in STRATEGIES.glob("*.yaml"))
    code, out, err = run(["validate", *files], capsys)
    assert code == 0, err
    assert out.count(": ok") == len(files)
    assert "warning" not in err


def test_json_format_lists_diagnostics_for_tools(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "metadata: {name: x}\ntimeframe: 5m\nentry:\n  long:\n    a: close > ema(close)\n"
    )
    code, out, _ = run(["validate", "--format", "json", KINETIC_EMPIRE, str(bad)], capsys)
    assert code == 2
    report = json.loads(out)
    assert [r["valid"] for r in report] == [True, False]
    (diagnostic,) = report[1]["diagnostics"]
    assert diagnostic["line"] == 5 and diagnostic["column"] == 16
    assert "period" in diagnostic["message"] and diagnostic["code"] == "arity"


def test_set_overrides_are_checked_against_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate", KINETIC_EMPIRE, "--set", "roc_threshold=3"], capsys)[0] == 0
    code, _, err = run(["validate", KINETIC_EMPIRE, "--set", "roc_threshold=30"], capsys)
    assert code == 2 and "above the largest allowed value 10" in err
    code, _, err = run(["validate", KINETIC_EMPIRE, "--set", "roc_treshold=3"], capsys)
    assert code == 2 and "did you mean roc_threshold" in err
    code, _, err = run(["validate", KINETIC_EMPIRE, "--set", "oops"], capsys)
    assert code == 2 and "NAME=VALUE" in err


def test_a_futures_stop_that_may_lie_past_the_liquidation_price_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = """metadata: {name: x}
timeframe: 5m
market: {type: futures}
entry:
  short:
    a: close < open
stoploss:
  initial: entry_price + 2 * atr(14)
  max_distance: 3%
leverage: LEVERAGE
"""
    risky = tmp_path / "risky.yaml"
    risky.write_text(
        text.replace("LEVERAGE", "if close > open then 10 else step(rsi(close), [50], [40])")
    )
    code, _, err = run(["validate", str(risky)], capsys)
    assert code == 0
    assert "risky.yaml:9:3: warning[liquidation]: at leverage 40 a short is liquidated 1.99%" in err
    assert "its stop may be 3.00% away" in err
    safe = tmp_path / "safe.yaml"
    safe.write_text(text.replace("LEVERAGE", "clamp(rsi(close) / 10, 1, 20)"))
    code, _, err = run(["validate", str(safe)], capsys)
    assert code == 0 and "warning" not in err


def test_a_cooldown_per_tag_needs_tags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "untagged.yaml"
    path.write_text(
        "metadata: {name: x}\ntimeframe: 5m\nentry:\n  long:\n    a: close > open\n"
        "  cooldown: {pair: 30m, tag: 2h}\n"
    )
    code, _, err = run(["validate", str(path)], capsys)
    assert code == 2 and "a cooldown per tag needs tags" in err


HOSTILE = {
    "empty": b"",
    "only_comment": b"# nothing here\n",
    "binary": bytes(range(256)) * 4,
    "not_utf8": b"metadata: {name: \xff\xfe}\n",
    "list_at_top": b"- a\n- b\n",
    "alias_bomb": b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    + b"".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n".encode()
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ),
    "deep_yaml": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "deep_expression": b"metadata: {name: x}\ntimeframe: 5m\nentry:\n  long:\n    a: "
    + b"(" * 3000
    + b"1"
    + b")" * 3000
    + b" > 0\n",
    "python_tag": b"a: !!python/object/apply:os.system ['echo pwned']\n",
    "tabs": b"metadata:\n\tname: x\n",
    "huge_number": b"metadata: {name: x}\ntimeframe: 5m\nentry:\n  long:\n    a: 1e999999 > 0\n",
    "null_sections": b"metadata:\ntimeframe:\nentry:\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_gives_exit_2_and_no_traceback(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(HOSTILE[name])
    done = subprocess.run(
        [sys.executable, "-m", "kinetic_rules", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{name}.yaml:" in done.stderr  # every message says which file


def test_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["validate", "no/such/file.yaml"], capsys)
    assert code == 2 and "no/such/file.yaml" in err and "No such file" in err


def test_errors_from_flags_have_no_made_up_file_position(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", KINETIC_EMPIRE, "--set", "roc_threshold=abc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error[param]: --set roc_threshold=abc: 'abc' is not a number")


def test_a_bug_of_ours_is_reported_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kinetic_rules.compile import plan

    def broken(*_: object) -> None:
        raise ZeroDivisionError("simulated")

    monkeypatch.setattr(plan, "build_plan", broken)  # validate imports it when it runs
    assert main(["validate", KINETIC_EMPIRE]) == 1
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: simulated" in err and "Traceback" not in err
    crash = Path(err.split("details are in ")[1].split(";")[0])
    assert "Traceback" in crash.read_text() and "simulated" in crash.read_text()
    crash.unlink()
