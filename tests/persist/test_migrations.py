"""Schema migrations are run, not hoped for: old databases are upgraded with their rows,
newer ones are refused, the models agree with the scripts, a failed upgrade changes
nothing, and the scripts render for PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from kinetic_rules.engine.model import Fill, Trade
from kinetic_rules.errors import ConfigError
from kinetic_rules.persist import StoreError, TradeStore, migrations
from kinetic_rules.persist.models import Base
from tests.persist.conftest import db_url

INITIAL = "0001_initial"
ENTRY = pd.Timestamp("2024-03-04 10:05", tz="UTC")


def at_revision(path: Path, revision: str) -> None:
    """A database as an older kinetic-rules left it, made with Alembic alone."""
    engine = create_engine(db_url(path))
    with engine.begin() as connection:
        command.upgrade(migrations.config(connection), revision)
    engine.dispose()


def test_an_initial_revision_database_is_upgraded_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    at_revision(path, INITIAL)
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO trades (id, strategy, mode, pair, side, regime, signal_time, entry_time,"
            " entry_price, amount, stake, leverage, initial_stop, stop) VALUES (7, 'ke', 'live',"
            " 'SOL/USDT', 'long', 'bull', ?, ?, 145.2, 2.0, 290.4, 1.0, 138.0, 140.0)",
            ((ENTRY - pd.Timedelta("5min")).value, ENTRY.value),
        )
        raw.execute(
            "INSERT INTO fills (trade_id, seq, time, price, amount, fee, reason)"
            " VALUES (7, 0, ?, 145.2, 2.0, 0.29, 'entry')",
            (ENTRY.value,),
        )
        raw.execute("INSERT INTO runtime_state VALUES ('last_candle', '2024-03-04', 0)")
        assert "ix_trades_pair_entry_time" not in {
            row[1] for row in raw.execute("PRAGMA index_list(trades)")
        }
    with TradeStore(db_url(path)) as store:
        assert store.revision == migrations.head() != INITIAL
        trades = store.open_trades()
        assert store.state("last_candle") == "2024-03-04"
    assert trades == [
        Trade(7, "SOL/USDT", "long", "bull", ENTRY - pd.Timedelta("5min"), ENTRY, 145.2, 2.0,
              290.4, 1.0, 138.0, stop=140.0, fills=[Fill(ENTRY, 145.2, 2.0, 0.29, "entry")])
    ]  # fmt: skip
    engine = create_engine(db_url(path))
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("trades")}
    engine.dispose()
    assert {"ix_trades_pair_entry_time", "ix_trades_exit_time"} <= indexes


def test_trades_stored_before_tags_and_margin_get_none_and_new_ones_keep_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "before_tags.sqlite"
    at_revision(path, "0002_trade_query_indexes")
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO trades (id, strategy, mode, pair, side, regime, signal_time, entry_time,"
            " entry_price, amount, stake, leverage, initial_stop) VALUES (3, 'v3', 'paper',"
            " 'BTC/USDT', 'short', NULL, ?, ?, 60000.0, 0.1, 600.0, 10.0, 61000.0)",
            ((ENTRY - pd.Timedelta("5min")).value, ENTRY.value),
        )
    futures = Trade(0, "ETH/USDT", "long", None, ENTRY, ENTRY + pd.Timedelta("5min"), 3000.0,
                    1.0, 300.0, 10.0, 2900.0, tags=("keltner", "trend"), margin=300.0,
                    liquidation_price=2713.567839195979)  # fmt: skip
    with TradeStore(db_url(path)) as store:
        (old,) = store.trades()
        assert (old.tags, old.margin, old.liquidation_price) == ((), None, None)
        new_id = store.open_trade(futures, strategy="v3", mode="paper")
        again = store.trade(new_id)
    assert again is not None
    assert (again.tags, again.margin, again.liquidation_price) == (
        ("keltner", "trend"), 300.0, 2713.567839195979,
    )  # fmt: skip


def test_a_database_from_a_newer_kinetic_rules_is_refused(url: str) -> None:
    TradeStore(url).close()
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE kinetic_rules_version SET version_num = '0099_from_the_future'")
    with pytest.raises(ConfigError, match="'0099_from_the_future', newer than this"):
        TradeStore(url)
    with sqlite3.connect(path) as raw:  # and it was not touched
        assert raw.execute("SELECT version_num FROM kinetic_rules_version").fetchall() == [
            ("0099_from_the_future",)
        ]


def test_the_models_match_what_the_migrations_create(url: str) -> None:
    TradeStore(url).close()
    engine = create_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": migrations.VERSION_TABLE}
        )
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == [], "add a migration for this model change"


def test_every_revision_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    path = tmp_path / "roundtrip.sqlite"
    at_revision(path, "head")
    engine = create_engine(db_url(path))
    with engine.begin() as connection:
        command.downgrade(migrations.config(connection), "base")
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == {"kinetic_rules_version"}
    engine.dispose()
    with TradeStore(db_url(path)) as store:
        assert store.revision == migrations.head() and store.trades() == []


def test_a_failed_upgrade_changes_nothing(tmp_path: Path) -> None:
    """Each upgrade is one transaction, on SQLite too: the second revision's second index
    cannot be made here, so its first index must not stay behind either."""
    path = tmp_path / "old.sqlite"
    at_revision(path, INITIAL)
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE blocker (x)")
        raw.execute("CREATE INDEX ix_trades_exit_time ON blocker (x)")
    with pytest.raises(StoreError, match="already exists"):
        TradeStore(db_url(path), retry_interval=0.0)
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT version_num FROM kinetic_rules_version").fetchall() == [
            (INITIAL,)
        ]
        names = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
        assert "ix_trades_pair_entry_time" not in names


def test_the_migrations_are_plain_sql_for_postgresql() -> None:
    script = migrations.sql_script("postgresql")
    assert "CREATE TABLE trades" in script and "DOUBLE PRECISION" in script
    assert "CREATE INDEX ix_trades_pair_entry_time ON trades (pair, entry_time)" in script
    assert f"version_num='{migrations.head()}'" in script
    assert "PRAGMA" not in script and "sqlite" not in script.lower()
