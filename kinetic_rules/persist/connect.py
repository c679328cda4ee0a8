"""Opening a database: which URL, how SQLite is set up, which failures are worth a retry.

SQLite is configured on every new connection: write-ahead log (readers never block
the writer), synchronous=FULL (a committed trade survives a power cut, not only a
crash), foreign keys on, a busy timeout. SQLAlchemy, not the sqlite3 module, emits
BEGIN — `BEGIN IMMEDIATE` for writes — so every write and every migration is one real
transaction. Nothing else here knows which database it talks to.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.pool import StaticPool

from kinetic_rules import secrets
from kinetic_rules.errors import ConfigError, KineticError
from kinetic_rules.files import check_regular, open_regular

DB_ENV = "KINETIC_RULES_DB"
DEFAULT_PATH = Path("user_data") / "trades.sqlite"
WRITE = "kinetic_rules_write"  # execution option: this transaction will write
CONNECT_TIMEOUT_S = 5  # seconds to reach a database server
_LIBPQ_DRIVERS = ("psycopg2", "psycopg")

_DRIVERS = {
    "postgresql": "psycopg[binary] (then use postgresql+psycopg://…)",
    "mysql": "pymysql (then use mysql+pymysql://…)",
}


class StoreError(KineticError):
    """The trade database failed, or stayed unreachable after the retries: halt."""


def resolve_url(url: str | None) -> str:
    """`--db URL`, else $KINETIC_RULES_DB, else SQLite in ./user_data/trades.sqlite."""
    if url:
        return url
    return os.environ.get(DB_ENV) or f"sqlite:///{DEFAULT_PATH}"


def mask(url: str | URL) -> str:
    """The URL as it may appear in a message or a log: never with its password."""
    text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    return secrets.mask(text)


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"'{mask(url)}' is not a database URL; write sqlite:///path/to/trades.sqlite "
            "or postgresql+psycopg://user:password@host/database"
        ) from None
    return parsed


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for anything else, including in-memory SQLite."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def create(url: URL, *, busy_timeout: float, create_file: bool, read_only: bool = False) -> Engine:
    """An engine for `url`; ConfigError when the URL cannot name a usable database.

    `read_only`: a SQLite file is opened with mode=ro and left exactly as it was (no
    journal mode switched, nothing created); a missing, empty or non-SQLite file is
    refused before SQLite sees it."""
    where = mask(url)
    path = sqlite_file(url)
    if path is not None and read_only:
        _check_readable_database(path, where)
        return _read_only_sqlite(path, busy_timeout)
    if path is not None:
        if path.is_dir():
            raise ConfigError(f"{where}: {path} is a directory, not a database file")
        if path.exists():
            try:  # a FIFO or a device would block SQLite, or feed it garbage
                check_regular(path)
            except OSError as problem:
                raise ConfigError(f"{where}: {problem.strerror or problem}") from None
        elif not create_file:
            raise ConfigError(f"no trade database at {path} ({where})")
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as problem:
                reason = problem.strerror or str(problem)
                raise ConfigError(f"{where}: cannot create {path.parent} ({reason})") from None
    options: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() == "postgresql" and url.get_driver_name() in _LIBPQ_DRIVERS:
        # An unreachable server fails in seconds instead of the operating system's minutes.
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    if url.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": busy_timeout}
        if path is None:  # in memory: one connection, or each one sees its own database
            options["poolclass"] = StaticPool
            options["connect_args"]["check_same_thread"] = False
    try:
        engine = create_engine(url, **options)
    except NoSuchModuleError:
        raise ConfigError(f"{where}: unknown database kind '{url.drivername}'") from None
    except ImportError as missing:
        driver = _DRIVERS.get(url.get_backend_name(), f"the Python driver for {url.drivername}")
        raise ConfigError(
            f"{where}: the database driver is not installed ({missing.name or missing}); "
            f"install {driver}"
        ) from None
    if url.get_backend_name() == "sqlite":
        _setup_sqlite(engine, busy_timeout, wal=path is not None)
    return engine


SQLITE_HEADER = b"SQLite format 3\x00"


def _check_readable_database(path: Path, where: str) -> None:
    try:
        with open_regular(path) as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        raise ConfigError(f"no trade database at {path} ({where})") from None
    except OSError as problem:
        raise ConfigError(f"{where}: {problem.strerror or problem}") from None
    if not header:
        raise ConfigError(f"{where}: the file is empty, not a trade database")
    if header != SQLITE_HEADER:
        raise ConfigError(
            f"{where} is not a usable SQLite database (it is not a SQLite file); "
            "give a trade database with --db"
        )


def _read_only_sqlite(path: Path, busy_timeout: float) -> Engine:
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"

    def connection() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=busy_timeout, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connection, pool_pre_ping=True)
    _setup_sqlite(engine, busy_timeout, wal=False)
    return engine


def _setup_sqlite(engine: Engine, busy_timeout: float, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: two writers queue on the busy
        # timeout instead of one failing when its read lock cannot be upgraded.
        writes = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def is_transient(error: BaseException) -> bool:
    """Worth another try: locked or busy, connection lost or refused. PEP 249 defines
    OperationalError as "an error of the database's operation"; sqlite3 also uses it
    for mistakes in SQL, so for SQLite only the messages of a busy database count."""
    original = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(original, sqlite3.Error):
        text = str(original).lower()
        return isinstance(original, sqlite3.OperationalError) and any(
            word in text for word in ("locked", "busy", "unable to open", "disk i/o")
        )
    return isinstance(error, OperationalError | InterfaceError)


def unusable(error: BaseException, where: str) -> ConfigError | None:
    """A clear message for a file that is not a (healthy) SQLite database, else None."""
    original = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(original, sqlite3.DatabaseError) and not isinstance(
        original, sqlite3.OperationalError | sqlite3.IntegrityError
    ):
        text = str(original)
        hint = (
            "restore it from a backup or give another file with --db"
            if "malformed" in text
            else "give a SQLite database file, or a new path, with --db"
        )
        return ConfigError(f"{where} is not a usable SQLite database ({text}); {hint}")
    return None
