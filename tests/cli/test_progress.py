"""Progress in named phases: one line per finished phase with its time when the output is
not a terminal; on a terminal, one display whose bar belongs to the phase at work."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from kinetic_rules.cli.app import main
from kinetic_rules.cli.progress import Phases
from tests.conftest import STRATEGIES

KE = str(STRATEGIES / "kinetic_empire.yaml")


def test_each_phase_is_one_line_with_its_time_when_not_on_a_terminal() -> None:
    out = io.StringIO()
    with Phases(out) as phases:
        phases("loading", 0, 4)
        phases("loading", 4, 4)
        phases("indicators", 1, 2)
        phases("portfolio")
    lines = out.getvalue().splitlines()
    assert [re.sub(r"\d+\.\d+s$", "T", line) for line in lines] == [
        "loading (4): T",
        "indicators (2): T",
        "portfolio: T",
    ]


def test_on_a_terminal_the_bar_is_the_current_phase_only() -> None:
    """A finished phase's full bar is removed when the next phase starts."""
    phases = Phases(io.StringIO(), live=True)
    phases("indicators", 3, 3)
    phases("portfolio")
    bar = phases._bar
    assert bar is not None
    assert [task.description for task in bar.tasks] == ["portfolio"]
    assert bar.tasks[0].total is None  # no count known: no bar that could read "100%"
    phases.close()


def test_backtest_names_its_phases_in_order(
    fixture_store: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["backtest", KE, "--data", str(fixture_store), "--pairs", "BTC/USDT", "ETH/USDT"]
    assert main(args) == 0
    err = capsys.readouterr().err
    phases = [line.split(":")[0] for line in err.splitlines() if re.search(r": \d+\.\ds$", line)]
    assert phases[:2] == ["loading (3)", "indicators (2)"] and phases[3:] == ["reports"]
    assert re.fullmatch(r"portfolio \([\d,]+\)", phases[2])  # decisions made, counted
    # writing the files is counted: the summary, two trade files, the page, one per pair page
    assert main([*args, "--report", str(tmp_path), "--report-detail"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"^reports \((\d+)\): \d+\.\ds$", err, re.MULTILINE)
    pages = len(list((tmp_path / "pairs").glob("*.html")))
    assert f"reports ({4 + pages})" in err and pages >= 1
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_replay_names_its_phases(fixture_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", KE, "--replay", str(fixture_store), "--pairs", "BTC/USDT"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert re.search(r"^loading: \d+\.\ds$", err, re.MULTILINE)
    assert re.search(r"^replay \([\d,]+\): \d+\.\ds$", err, re.MULTILINE)


def test_data_import_names_its_phases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixtures = Path(__file__).parents[1] / "fixtures" / "binance-15m-csv"
    assert main(["data", "import", "--data", str(tmp_path), str(fixtures)]) == 0
    err = capsys.readouterr().err
    found = re.findall(r"^(checking|storing) \((\d+)\): \d+\.\ds$", err, re.MULTILINE)
    files = len([p for p in fixtures.iterdir() if p.is_file()])
    assert [name for name, _ in found] == ["checking", "storing"]
    assert int(found[0][1]) == files > 0
