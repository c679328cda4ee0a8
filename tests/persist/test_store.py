"""TradeStore as the live runtime uses it, and every way opening a database can fail."""

from __future__ import annotations

import importlib.util
import logging
import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from kinetic_rules.engine.model import Fill, Trade
from kinetic_rules.engine.orders import Event, OrderState
from kinetic_rules.errors import ConfigError
from kinetic_rules.persist import DB_ENV, StoreError, TradeStore, mask
from tests.persist.conftest import db_url, stored

T0 = pd.Timestamp("2024-03-04 10:05", tz="UTC")


def make_trade(pair: str = "SOL/USDT", minutes: int = 0, price: float = 145.2) -> Trade:
    at = T0 + pd.Timedelta(minutes=minutes)
    return Trade(id=0, pair=pair, side="long", regime="bull", signal_time=at - pd.Timedelta("5min"),
                 entry_time=at, entry_price=price, amount=2.0, stake=2 * price, leverage=1.0,
                 initial_stop=price * 0.95, stop=price * 0.95,
                 fills=[Fill(at, price, 2.0, 0.29, "entry")])  # fmt: skip


def sql(store: TradeStore, query: str) -> list[tuple[object, ...]]:
    return store._read(lambda s: [tuple(r) for r in s.execute(text(query))])


# -- the runtime's calls -------------------------------------------------------------------


def test_a_trade_lives_from_open_to_close(store: TradeStore) -> None:
    trade = make_trade()
    trade_id = store.open_trade(trade, strategy="ke", mode="paper")
    store.update_stop(trade_id, 150.0, T0 + pd.Timedelta("1h"))
    moved = stored(trade, trade_id)
    moved.stop = 150.0
    assert store.open_trades("ke", "paper") == [moved] and store.open_trades("ke", "live") == []
    half = Fill(T0 + pd.Timedelta("2h"), 152.0, 1.0, 0.15, "take_profit_1")
    store.add_fill(trade_id, half)
    store.add_fill(trade_id, half)  # a repeat after a restart: recorded once
    last = Fill(T0 + pd.Timedelta("3h"), 149.0, 1.0, 0.15, "trend_break")
    store.close_trade(trade_id, exit_time=last.time, exit_price=150.5, exit_reason="trend_break",
                      stop=150.0, fill=last)  # fmt: skip
    closed = store.trade(trade_id)
    assert closed is not None and not closed.is_open
    assert [f.reason for f in closed.fills] == ["entry", "take_profit_1", "trend_break"]
    assert closed.profit == pytest.approx(6.8 + 3.8 - 0.29 - 0.3)
    assert sql(store, "SELECT profit, stop_time FROM trades") == [
        (closed.profit, (T0 + pd.Timedelta("1h")).value)
    ]
    assert store.open_trades() == [] and store.trades(outcome="win") == [closed]


def test_opening_the_same_trade_again_returns_its_id(store: TradeStore) -> None:
    trade = make_trade()
    first = store.open_trade(trade, strategy="ke", mode="live")
    changed = make_trade(price=999.0)  # same key, other numbers: a replay, not a new trade
    changed.id = 77
    assert store.open_trade(changed, strategy="ke", mode="live") == first
    assert store.open_trade(trade, strategy="ke", mode="paper") != first
    assert store.open_trade(trade, strategy="v3", mode="live") != first
    assert len(store.trades()) == 3 and store.trade(first) == stored(trade, first)


def test_the_database_itself_refuses_a_duplicate_trade(store: TradeStore) -> None:
    store.open_trade(make_trade(), strategy="ke", mode="live")
    copy = (
        "INSERT INTO trades (strategy, mode, pair, side, regime, signal_time, entry_time, "
        "entry_price, amount, stake, leverage, initial_stop) SELECT strategy, mode, pair, side, "
        "regime, signal_time, entry_time, 1, 1, 1, 1, 1 FROM trades"
    )
    with pytest.raises(StoreError, match="UNIQUE") as caught:
        store._write(lambda s: s.execute(text(copy)))
    assert isinstance(caught.value.__cause__, IntegrityError)


def test_unstorable_values_and_unknown_trades_are_refused(store: TradeStore) -> None:
    with pytest.raises(ValueError, match="entry_price"):
        store.open_trade(make_trade(price=float("nan")), strategy="ke", mode="paper")
    with pytest.raises(ValueError, match="mode"):
        store.open_trade(make_trade(), strategy="ke", mode="dry")
    with pytest.raises(StoreError, match="no trade with id 42"):
        store.add_fill(42, Fill(T0, 1.0, 1.0, 0.0, "entry"))
    no_stop = make_trade()
    no_stop.initial_stop = float("-inf")  # a strategy without a stop loss
    trade_id = store.open_trade(no_stop, strategy="ke", mode="paper")
    assert store.open_trades()[0].initial_stop == float("-inf")
    assert store.trades() == [stored(no_stop, trade_id)]


def test_orders_are_upserted_by_client_id(store: TradeStore) -> None:
    trade_id = store.open_trade(make_trade(), strategy="ke", mode="live")
    order = OrderState("ke-1-entry", "x1", "SOL/USDT", "open", "limit", 2.0, updated=T0,
                       raw={"id": "x1", "info": {"price": "145.2"}, "fee": None})  # fmt: skip
    stop = OrderState("ke-1-stop", "x2", "SOL/USDT", "open", "stop", 2.0)
    other = OrderState("ke-2-entry", "x3", "ETH/USDT", "rejected", "limit", 1.0, reason="funds")
    store.save_order(trade_id, order)
    store.save_order(trade_id, stop)
    store.save_order(None, other)
    filled = OrderState("ke-1-entry", "x1", "SOL/USDT", "closed", "limit", 2.0, filled=2.0,
                        average=145.1, fee=0.29, updated=T0 + pd.Timedelta("1min"))  # fmt: skip
    store.save_order(None, filled)  # None keeps the trade it belongs to
    assert store.orders() == [filled, stop, other]
    assert store.orders(open_only=True) == [stop]
    assert store.orders(pair="ETH/USDT") == [other]
    assert store.orders(trade_id=trade_id) == [filled, stop]


def test_events_and_state(store: TradeStore) -> None:
    opened = Event("trade_opened", T0, "Opened SOL/USDT long at 145.20",
                   {"pair": "SOL/USDT", "price": 145.2, "at": T0})  # fmt: skip
    later = Event("error", T0 + pd.Timedelta("1h"), "exchange timeout", {})
    store.log_event(opened)
    store.log_event(later)
    back = store.events()
    assert [e.message for e in back] == [opened.message, later.message]
    assert back[0].data == {"pair": "SOL/USDT", "price": 145.2, "at": T0.isoformat()}
    assert store.events(since=T0 + pd.Timedelta("1min")) == [later]
    assert [e.kind for e in store.events(kinds=["trade_opened"])] == ["trade_opened"]
    assert store.state("last_candle") is None
    store.set_state("last_candle", "2024-03-04T10:05:00Z")
    store.set_state("last_candle", "2024-03-04T10:10:00Z")
    assert store.state("last_candle") == "2024-03-04T10:10:00Z"


# -- where the database is, and how SQLite is set up ---------------------------------------


def test_default_database_is_sqlite_in_user_data_in_wal_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DB_ENV, raising=False)
    with TradeStore() as store:
        store.open_trade(make_trade(), strategy="ke", mode="paper")
        assert store.where == "sqlite:///user_data/trades.sqlite"
        assert sql(store, "PRAGMA synchronous") == [(2,)]  # FULL
        assert sql(store, "PRAGMA foreign_keys") == [(1,)]
    database = tmp_path / "user_data" / "trades.sqlite"
    with sqlite3.connect(database) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    monkeypatch.setenv(DB_ENV, db_url(tmp_path / "elsewhere.sqlite"))
    with TradeStore() as store:
        assert store.trades() == []
    assert (tmp_path / "elsewhere.sqlite").exists()


def test_trades_survive_closing_and_reopening(url: str) -> None:
    with TradeStore(url) as store:
        trade_id = store.open_trade(make_trade(), strategy="ke", mode="live")
    with TradeStore(url) as store:
        assert store.open_trades() == [stored(make_trade(), trade_id)]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"pair,price\nSOL/USDT,145.2\n" * 100, "file is not a database"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "not a usable SQLite database"),
    ],
)
def test_a_file_that_is_no_database_is_a_clear_config_error(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "trades.csv"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=expected):
        TradeStore(db_url(path))
    assert path.read_bytes() == content  # and it is left alone


def test_a_damaged_database_is_a_clear_config_error(tmp_path: Path) -> None:
    path = tmp_path / "trades.sqlite"
    with TradeStore(db_url(path)) as store:
        for minutes in range(0, 1000, 5):
            store.open_trade(make_trade(minutes=minutes), strategy="ke", mode="paper")
    data = bytearray(path.read_bytes())
    data[4096 : len(data)] = b"\x07" * (len(data) - 4096)  # every page after the first
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="usable SQLite database"):
        TradeStore(db_url(path))


def test_bad_urls_and_missing_drivers_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        TradeStore("trades.sqlite")
    with pytest.raises(ConfigError, match="unknown database kind"):
        TradeStore("nosuchdb://host/db")
    with pytest.raises(ConfigError, match="is a directory"):
        TradeStore(db_url(tmp_path))
    with pytest.raises(ConfigError, match="no trade database"):
        TradeStore(db_url(tmp_path / "missing.sqlite"), create=False)
    if importlib.util.find_spec("psycopg") is None:
        with pytest.raises(ConfigError, match="psycopg") as caught:
            TradeStore("postgresql+psycopg://bob:s3cret@localhost/trades")
        assert "s3cret" not in str(caught.value) and "bob:***@localhost" in str(caught.value)


def test_passwords_never_appear_in_messages() -> None:
    assert (
        mask("postgresql+psycopg://bob:s3cret@db/trades")
        == "postgresql+psycopg://bob:***@db/trades"
    )
    assert "s3cret" not in mask("postgresql://bob:s3cret@db:notaport/trades")
    with pytest.raises(ConfigError) as caught:
        TradeStore("postgresql://bob:s3cret@db:notaport/trades")
    assert "s3cret" not in str(caught.value)


def test_another_programs_database_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "tradesv3.sqlite"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT)")
    with pytest.raises(ConfigError, match="freqtrade"):
        TradeStore(db_url(path))


# -- a busy database: retried, then halt ---------------------------------------------------


def hold_write_lock(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_locked_database_is_retried_three_times_five_seconds_apart_then_halts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = db_url(tmp_path / "trades.sqlite")
    TradeStore(url).close()
    slept: list[float] = []
    holder = hold_write_lock(tmp_path / "trades.sqlite")
    release_after = [99]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == release_after[0]:
            holder.rollback()

    with TradeStore(url, busy_timeout=0.02, sleep=sleep) as store:
        with caplog.at_level(logging.WARNING), pytest.raises(StoreError, match="after 4 tries"):
            store.set_state("k", "v")
        assert slept == [5.0, 5.0, 5.0]
        assert "database is locked" in caplog.text and "retry 3 of 3" in caplog.text
        release_after[0] = 5  # the lock goes away during the second retry's wait
        store.set_state("k", "v")
        assert store.state("k") == "v" and len(slept) == 5
    holder.close()


def test_two_writers_on_one_file_queue_instead_of_failing(url: str) -> None:
    errors: list[BaseException] = []

    def writer(strategy: str) -> None:
        try:
            with TradeStore(url, busy_timeout=5.0) as store:
                for minutes in range(0, 200, 5):
                    store.open_trade(make_trade(minutes=minutes), strategy=strategy, mode="paper")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    TradeStore(url).close()
    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with TradeStore(url) as store:
        assert len(store.trades()) == 80


def test_a_reader_that_cannot_reach_its_database_says_so_at_once(tmp_path: Path) -> None:
    """`trades` must not hang through retries meant for a running bot's writes."""
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"
    TradeStore(url).close()
    slept: list[float] = []
    reader = TradeStore(url, read_only=True, retries=3, sleep=slept.append)
    reader.close()
    (tmp_path / "trades.sqlite").unlink()
    with pytest.raises(StoreError, match="after 1 tries"):
        reader.trades()
    assert slept == []
