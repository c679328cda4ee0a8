"""Modes are checked, not discovered: `validate` says where a file can run, and a file
whose rules need an input its mode never supplies is refused at once, with the place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kinetic_rules.cli.app import main
from kinetic_rules.compile.modes import check_modes
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_text
from tests.conftest import STRATEGIES

NEEDS_SPREAD = """\
metadata: {name: t}
timeframe: 15m
indicators:
  bonus: if book_imbalance > 0.2 then 1 else 0   # optional: defined without a book
entry:
  long:
    go: volume > 100
    tight: spread < 0.1% and bonus >= 0
"""


def _modes(text: str) -> dict[str, list[str]]:
    plan = build_plan(check(load_text(text, "t.yaml")))
    return {m.mode: [d.message for d in m.problems] for m in check_modes(plan)}


def test_a_rule_that_cannot_hold_without_a_live_input_rules_out_backtests() -> None:
    modes = _modes(NEEDS_SPREAD)
    assert modes["paper"] == [] and modes["live"] == []
    (problem,) = modes["backtest"]
    assert "entry.long.tight needs 'spread'" in problem
    assert modes["replay"] and "book_imbalance" not in problem


@pytest.mark.parametrize(
    "rule",
    [
        "close > 0 or spread < 0.1%",  # one side of an `or` holds without it
        "not (spread > 1%)",
        "(if spread < 0.1% then 1 else 0) + 1 > 0",  # the condition of an `if`
    ],
)
def test_an_optional_live_input_does_not_rule_out_a_mode(rule: str) -> None:
    text = f"metadata: {{name: t}}\ntimeframe: 15m\nentry:\n  long:\n    a: {rule}\n"
    assert all(problems == [] for problems in _modes(text).values())


def test_validate_lists_the_modes_and_fails_only_for_a_mode_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = tmp_path / "s.yaml"
    strategy.write_text(NEEDS_SPREAD)
    assert main(["validate", str(strategy)]) == 0
    out = capsys.readouterr().out
    assert "runs in: paper, live (spot)" in out
    assert f"not in backtest: {strategy}:8:12: entry.long.tight needs 'spread'" in out
    assert main(["validate", "--mode", "paper", str(strategy)]) == 0
    capsys.readouterr()
    assert main(["validate", "--mode", "backtest", str(strategy)]) == 2
    err = capsys.readouterr().err
    assert f"{strategy}:8:12: error[mode-input]" in err and "^^^" in err
    assert main(["validate", "--format", "json", str(strategy)]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["modes"]["live"]["ok"] and not report["modes"]["backtest"]["ok"]
    assert report["modes"]["backtest"]["problems"][0]["line"] == 8


def test_validate_says_which_scanner_steps_backtests_skip(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(STRATEGIES / "kinetic_empire.yaml")]) == 0
    out = capsys.readouterr().out
    assert "runs in: backtest, replay, paper, live (spot)" in out
    assert "scanner step 'tight_spread' is skipped" in out


def test_a_backtest_of_a_file_needing_a_live_input_exits_2_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = tmp_path / "s.yaml"
    strategy.write_text(NEEDS_SPREAD)
    code = main(["backtest", str(strategy), "--data", str(tmp_path / "nothing"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{strategy}:8:12: error[mode-input]" in err and "Traceback" not in err
    code = main(["run", str(strategy), "--replay", str(tmp_path), "--quiet"])
    assert code == 2 and "a replay never supplies" in capsys.readouterr().err
