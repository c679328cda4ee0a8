"""Output paths are checked before the work: a wrong one fails at once with exit 2 and a
plain message, never after a long run with an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinetic_rules.cli.outputs import check_output_dir, check_output_file
from kinetic_rules.errors import ConfigError
from tests.conftest import STRATEGIES
from tests.security.helpers import cli

KE = str(STRATEGIES / "kinetic_empire.yaml")


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("x")
    return path


def test_a_report_folder_that_is_a_file_fails_before_the_backtest(
    a_file: Path, tmp_path: Path
) -> None:
    # The store does not exist either: the report flag is what must be refused first.
    for report, words in ((a_file, "is a file, not a folder"),
                          (a_file / "sub", "is a file, so no folder")):  # fmt: skip
        done = cli("backtest", KE, "--data", str(tmp_path / "none"), "--report", str(report))
        assert done.returncode == 2, done.stderr
        assert f"--report {report}: " in done.stderr and words in done.stderr


def test_an_export_without_report_checks_the_default_folder(a_file: Path, tmp_path: Path) -> None:
    (tmp_path / "user_data").mkdir()
    (tmp_path / "user_data" / "backtest").write_text("in the way")
    done = cli("backtest", KE, "--export", "trades", cwd=tmp_path)
    assert done.returncode == 2 and "--report user_data/backtest" in done.stderr


def test_trades_output_is_checked_before_the_database_is_opened(
    a_file: Path, tmp_path: Path
) -> None:
    missing_db = f"sqlite:///{tmp_path / 'none.sqlite'}"
    cases = {
        tmp_path / "no" / "such" / "out.csv": "the folder",
        tmp_path: "is a folder",
        a_file / "out.csv": "is a file, not a folder",
    }
    for output, words in cases.items():
        done = cli("trades", "--db", missing_db, "--output", str(output))
        assert done.returncode == 2, done.stderr
        assert words in done.stderr and "no trade database" not in done.stderr


def test_a_device_is_never_replaced_by_an_output_file() -> None:
    with pytest.raises(ConfigError, match="is a device, not a regular file"):
        check_output_file(Path("/dev/null"), "--output")
    with pytest.raises(ConfigError, match="is a symbolic link"):
        check_output_file(Path("/dev/stdout"), "--output")
    assert Path("/dev/null").is_char_device()


def test_the_data_store_folder_is_checked_before_importing(a_file: Path) -> None:
    done = cli("data", "import", "--data", str(a_file), str(a_file))
    assert done.returncode == 2 and "--data" in done.stderr and "not a folder" in done.stderr


def test_an_unwritable_folder_is_refused(tmp_path: Path) -> None:
    # /proc refuses new files even to root: a real unwritable place on Linux.
    proc = Path("/proc")
    if not proc.is_dir():
        pytest.skip("needs /proc")
    with pytest.raises(ConfigError, match="cannot write in /proc"):
        check_output_dir(proc / "kinetic-report", "--report")
    with pytest.raises(ConfigError, match="cannot write in /proc"):
        check_output_file(proc / "trades.csv", "--output")
    check_output_dir(tmp_path / "new" / "report", "--report")  # creatable: fine
    assert not (tmp_path / "new").exists()  # and nothing is left behind by the check
