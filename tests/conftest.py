"""Shared fixtures: real Binance candles cut from ../shared/data (see fixtures/cut_fixtures.py)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

# No example has a deadline: Hypothesis's default (200 ms each) is a wall-clock limit that
# fails tests on a busy machine, and speed is the benchmarks' business. CI draws the same
# examples every run (no flaky landings); local runs keep exploring.
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci", parent=settings.get_profile("dev"), derandomize=True, print_blob=True
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# Test files live in memory where the machine has a memory file system (unless TMPDIR says
# otherwise): trade stores commit with synchronous=FULL and candle files are fsynced, which
# on a disk costs milliseconds a commit (most of a replay's time), and no test can observe
# a power cut. pytest's tmp_path folders, and the bot processes the tests start, follow.
# Only with room to spare (a container's /dev/shm may hold just 64 MB).
MEMORY_FILES = Path("/dev/shm")


def _roomy(folder: Path, least: int = 2 * 1024**3) -> bool:
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        return False
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize >= least


if "TMPDIR" not in os.environ and _roomy(MEMORY_FILES):
    os.environ["TMPDIR"] = str(MEMORY_FILES)
    tempfile.tempdir = str(MEMORY_FILES)

# Trained models stay in memory during tests: nothing is written to ./user_data/models.
os.environ.setdefault("KINETIC_RULES_MODELS", "off")

FIXTURES = Path(__file__).parent / "fixtures"
STRATEGIES = Path(__file__).parents[1] / "strategies"
# A session's rolling window, in candles, that holds the fixtures' whole history (8,352
# candles of 5m at most) and so sees what a backtest sees. No larger: every cycle of a
# session downloads the window's span and compares it candle by candle with the store.
WHOLE_HISTORY = 10_000


@cache
def fixture_candles(pair: str, timeframe: str) -> pd.DataFrame:
    """Candles of a fixture pair, indexed by open time (UTC), as the store hands them out."""
    base = pair.split("/")[0]
    frame = pd.read_feather(FIXTURES / "binance-5m-2024" / f"{base}_USDT-{timeframe}.feather")
    return frame.set_index("date")[["open", "high", "low", "close", "volume"]]


@pytest.fixture
def feed() -> Callable[[str, str], pd.DataFrame]:
    return fixture_candles


@pytest.fixture(scope="session")
def fixture_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A candle store holding both fixture sets, imported through the CLI as a user would."""
    from kinetic_rules.cli.app import main

    root = tmp_path_factory.mktemp("store")
    code = main(
        [
            "data", "import", "--quiet", "--data", str(root),
            str(FIXTURES / "binance-5m-2024"), str(FIXTURES / "binance-15m-csv"),
        ]
    )  # fmt: skip
    assert code == 0
    return root


@pytest.fixture(scope="session")
def futures_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture candles plus funding rates, BTC/USDT mark prices and market rules
    (fixtures/binance-futures, fixtures/binance-markets.json), imported through the CLI."""
    from kinetic_rules.cli.app import main

    root = tmp_path_factory.mktemp("futures-store")
    code = main(
        [
            "data", "import", "--quiet", "--data", str(root), str(FIXTURES / "binance-5m-2024"),
            str(FIXTURES / "binance-15m-csv"), str(FIXTURES / "binance-futures"),
        ]
    )  # fmt: skip
    assert code == 0
    markets = FIXTURES / "binance-markets.json"
    assert main(["data", "import-markets", "--quiet", "--data", str(root), str(markets)]) == 0
    return root
