"""A FIFO, a device or a folder given where a file is expected is refused at once (exit 2);
nothing ever blocks waiting for a writer that will not come."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, STRATEGIES
from tests.security.helpers import cli

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "strategy.yaml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("command", ["validate", "backtest", "explain"])
def test_a_fifo_as_strategy_is_refused_without_blocking(fifo: Path, command: str) -> None:
    extra = ["--pair", "BTC/USDT", "--at", "2024-03-01T00:00"] if command == "explain" else []
    done = cli(command, str(fifo), *extra)
    assert done.returncode == 2, done.stderr
    assert "named pipe (FIFO), not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("given", "what"), [("/dev/zero", "a device"), (".", "a directory")])
def test_devices_and_folders_as_strategy_are_refused(given: str, what: str) -> None:
    done = cli("validate", given)
    assert done.returncode == 2
    assert f"is {what}, not a regular file" in done.stderr


def test_standard_input_that_is_a_pipe_is_refused() -> None:
    done = cli("validate", "/dev/stdin", piped_input="metadata: {name: x}\n")
    assert done.returncode == 2 and "named pipe (FIFO), not a regular file" in done.stderr


def test_a_fifo_or_device_as_data_file_is_refused(tmp_path: Path) -> None:
    candles = tmp_path / "BTCUSDT-15m.csv"
    os.mkfifo(candles)
    for given in (candles, Path("/dev/zero")):
        done = cli("data", "import", "--data", str(tmp_path / "store"), str(given))
        assert done.returncode == 2, done.stderr
        assert "not a regular file" in done.stderr


def test_a_folder_import_skips_the_fifo_inside_and_imports_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    shutil.copy(FIXTURES / "binance-15m-csv" / "BTCUSDT-1d.csv.gz", folder)
    os.mkfifo(folder / "ETHUSDT-1d.csv.gz")
    done = cli("data", "import", "--data", str(tmp_path / "store"), str(folder))
    assert done.returncode == 0, done.stderr
    assert "imported 1 of 1 files" in done.stdout
    assert list((tmp_path / "store").rglob("*BTC*"))


def test_a_shipped_strategy_still_reads(tmp_path: Path) -> None:
    assert cli("validate", str(STRATEGIES / "kinetic_empire.yaml")).returncode == 0


def test_a_fifo_or_device_as_trade_database_is_refused(tmp_path: Path) -> None:
    from kinetic_rules.errors import ConfigError
    from kinetic_rules.persist import TradeStore

    pipe = tmp_path / "trades.sqlite"
    os.mkfifo(pipe)
    for given in (pipe, Path("/dev/zero")):
        with pytest.raises(ConfigError, match="not a regular file"):
            TradeStore(f"sqlite:///{given}")  # the runtime's way: would create if missing
        done = cli("trades", "--db", f"sqlite:///{given}")
        assert done.returncode == 2 and "not a regular file" in done.stderr


def test_a_database_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    from kinetic_rules.errors import ConfigError
    from kinetic_rules.persist import TradeStore

    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="cannot create"):
        TradeStore(f"sqlite:///{tmp_path / 'notes.txt' / 'trades.sqlite'}")
