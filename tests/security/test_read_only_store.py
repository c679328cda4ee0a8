"""`trades` only reads: it never creates a database, converts one, or touches a file it
refuses. Each refused file is left byte for byte (and mtime) as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.engine.model import Fill, Trade
from kinetic_rules.persist import TradeStore
from tests.security.helpers import cli


def fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def _foreign(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE pairs (name TEXT)")
    connection.execute("INSERT INTO pairs VALUES ('BTC/USDT')")
    connection.commit()
    connection.close()


def _freqtrade(path: Path) -> None:  # another program's database with a `trades` table
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT)")
    connection.commit()
    connection.close()


MAKERS = {
    "empty": lambda path: path.write_bytes(b""),
    "text": lambda path: path.write_text("not a database\n"),
    "foreign": _foreign,
    "freqtrade": _freqtrade,
}


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_trades_refuses_a_file_that_is_not_a_trade_store_and_leaves_it_alone(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "trades.sqlite"
    MAKERS[kind](path)
    before = fingerprint(path)
    done = cli("trades", "--db", f"sqlite:///{path}")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "error:" in done.stderr
    assert fingerprint(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trades.sqlite"]


def test_trades_never_creates_a_database(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "trades.sqlite"
    done = cli("trades", "--db", f"sqlite:///{path}")
    assert done.returncode == 2 and "no trade database" in done.stderr
    assert not (tmp_path / "missing").exists()


def test_trades_reads_a_real_store_without_changing_it(tmp_path: Path) -> None:
    path = tmp_path / "trades.sqlite"
    at = pd.Timestamp("2024-03-04 10:05", tz="UTC")
    made = Trade(0, "SOL/USDT", "long", "bull", at, at, 100.0, 1.0, 100.0, 1.0, 95.0,
                 fills=[Fill(at, 100.0, 1.0, 0.1, "entry")])  # fmt: skip
    with TradeStore(f"sqlite:///{path}") as store:
        store.open_trade(made, strategy="ke", mode="paper")
    before = fingerprint(path)
    done = cli("trades", "--db", f"sqlite:///{path}", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert "SOL/USDT" in done.stdout
    assert fingerprint(path) == before
