"""`kinetic-rules run --replay` as a user runs it, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kinetic_rules.cli.app import main
from tests.conftest import STRATEGIES

KE = str(STRATEGIES / "kinetic_empire.yaml")


def test_replay_reports_the_backtests_trades(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["backtest", KE, "--data", str(fixture_store), "--report", str(tmp_path), "-q"]) == 0
    )
    trades = json.loads((tmp_path / "results.json").read_text())["trades"]
    capsys.readouterr()
    assert main(["run", KE, "--replay", str(fixture_store), "--quiet"]) == 0
    out = capsys.readouterr().out
    profit = sum(t["profit"] for t in trades)
    assert out.strip().endswith(f"profit {profit:+.2f}")
    assert out.startswith(f"{len(trades)} trades")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--live"], "not available in this version"),
        (["--replay", "no/such/dir"], "not a directory"),
        (["--replay", ".", "--speed", "fast"], "--speed fast"),
    ],
)
def test_run_refuses_clearly(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", KE, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_paper_trading_needs_pairs_or_a_scanner(capsys: pytest.CaptureFixture[str]) -> None:
    """Without pairs a scanner picks them from the exchange's markets (tests/live/test_markets.py);
    a strategy with neither cannot start."""
    assert main(["run", str(STRATEGIES / "adaptive_mtf.yaml")]) == 2
    err = capsys.readouterr().err
    assert "paper trading needs the pairs to trade" in err and "Traceback" not in err
