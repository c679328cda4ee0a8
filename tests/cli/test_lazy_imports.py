"""A command imports only what it uses: `backtest` never loads the exchange client, the
optimiser, the Telegram bot or the trade database, and `--help` loads no data library.
Each import costs start-up time on every run (ccxt alone takes longer than a short backtest)."""

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
loaded = sorted({name.split(".")[0] for name in sys.modules})
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
}


def _loaded(*args: str) -> tuple[int, set[str]]:
    done = python(LISTED, *args, env=environment())
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["loaded"])


def test_a_backtest_loads_no_live_research_or_database_library(
    fixture_store: Path, tmp_path: Path
) -> None:
    strategy = str(STRATEGIES / "kinetic_empire.yaml")
    code, loaded = _loaded(
        "backtest", strategy, "--data", str(fixture_store), "--report", str(tmp_path), "--quiet"
    )
    assert code == 0 and (tmp_path / "report.html").exists()
    assert {"pandas", "kinetic_rules"} <= loaded  # the listing does see what was imported
    assert not loaded & NEVER_FOR_A_BACKTEST


def test_help_loads_no_data_library() -> None:
    code, loaded = _loaded("--help")
    assert code == 0
    assert not loaded & {"pandas", "numpy", "pyarrow", "rich", *NEVER_FOR_A_BACKTEST}
