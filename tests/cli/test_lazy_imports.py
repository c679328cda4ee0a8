"""A command imports only what it uses: `backtest` never loads the exchange client, the
optimiser, the Telegram bot or the trade database, and `--help` loads no data library.
Each import costs start-up time on every run (ccxt alone takes longer than a short backtest).
A strategy without models does not load the live sessions' background trainer either
(worker processes: multiprocessing)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import STRATEGIES
from tests.security.helpers import environment, python

LISTED = """
import json, sys
from kinetic_rules.cli.app import main
try:
    code = main(sys.argv[1:])
except SystemExit as done:  # --help
    code = done.code
loaded = sorted(sys.modules)
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""
NEVER_FOR_A_BACKTEST = {
    "ccxt",  # live trading and downloads
    "optuna",  # optimize, walkforward
    "telegram",  # the bot
    "sqlalchemy",  # the trade database (run, trades)
    "alembic",
    "aiohttp",
    "httpx",
    "scipy",
    "multiprocessing",  # the background trainer of paper and live sessions
}
NEVER_FOR_A_BACKTEST_OF_OURS = {"kinetic_rules.models.background"}


def _modules(*args: str) -> tuple[int, set[str]]:
    """The exit code of the command and every module (dotted name) it imported."""
    done = python(LISTED, *args, env=environment())
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["loaded"])


def _loaded(*args: str) -> tuple[int, set[str]]:
    """The exit code of the command and the top-level packages it imported."""
    code, modules = _modules(*args)
    return code, {name.split(".")[0] for name in modules}


def test_a_backtest_loads_no_live_research_or_database_library(
    fixture_store: Path, tmp_path: Path
) -> None:
    strategy = str(STRATEGIES / "kinetic_empire.yaml")
    code, modules = _modules(
        "backtest", strategy, "--data", str(fixture_store), "--report", str(tmp_path), "--quiet"
    )
    loaded = {name.split(".")[0] for name in modules}
    assert code == 0 and (tmp_path / "report.html").exists()
    # the listing does see what was imported, the models stage included
    assert {"pandas", "kinetic_rules"} <= loaded and "kinetic_rules.models.predictions" in modules
    assert not loaded & NEVER_FOR_A_BACKTEST
    assert not modules & NEVER_FOR_A_BACKTEST_OF_OURS


def test_help_loads_no_data_library() -> None:
    code, loaded = _loaded("--help")
    assert code == 0
    assert not loaded & {"pandas", "numpy", "pyarrow", "rich", *NEVER_FOR_A_BACKTEST}
