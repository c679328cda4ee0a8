"""Schema migrations, run in code: every TradeStore brings its database to the newest
revision when it opens, inside one transaction, and refuses a database that is newer
than this version of kinetic-rules (downgrading the program must never damage data).

To change the schema: edit `models.py`, add a script to `versions/` whose
`down_revision` is the current head, and run the persistence tests; one of them fails
while the models and the migrations disagree.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from kinetic_rules.errors import ConfigError

HERE = Path(__file__).parent
# Our own name, so the database may also hold another application's Alembic history.
VERSION_TABLE = "kinetic_rules_version"
OUR_TABLES = (
    "trades", "fills", "orders", "events", "runtime_state", "decisions", "equity", "candles",
)  # fmt: skip


def config(connection: Connection | None = None) -> Config:
    """An Alembic config without a file: the scripts live in this package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@cache
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    found = scripts().get_current_head()
    assert found is not None, "no migration scripts found"
    return found


def current(connection: Connection) -> tuple[str, ...]:
    """The revisions the database is stamped with; () for a database we never touched."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return tuple(context.get_current_heads())


def check(connection: Connection, where: str, target: str = "head") -> bool:
    """Whether the schema needs an upgrade to `target`; ConfigError for a database that
    is newer than this code, or that holds another program's tables."""
    stamped = current(connection)
    for revision in stamped:
        try:
            known = scripts().get_revision(revision) is not None
        except CommandError:
            known = False
        if not known:
            raise ConfigError(
                f"the trade database {where} has schema revision '{revision}', newer than "
                f"this kinetic-rules knows (newest: '{head()}'); upgrade kinetic-rules to "
                "use it, or point --db at another database"
            )
    if not stamped:
        foreign = sorted(set(OUR_TABLES) & set(inspect(connection).get_table_names()))
        if foreign:
            raise ConfigError(
                f"{where} already has tables that kinetic-rules did not create "
                f"({', '.join(foreign)}): is it another program's database (freqtrade's "
                "tradesv3.sqlite)? Give kinetic-rules a database of its own with --db"
            )
    wanted = head() if target == "head" else target
    return stamped != (wanted,)


def upgrade(connection: Connection, where: str, target: str = "head") -> None:
    """Bring the schema to `target` on a connection whose transaction the caller owns."""
    if check(connection, where, target):
        command.upgrade(config(connection), target)


def sql_script(dialect: str, target: str = "head") -> str:
    """The SQL the migrations run, for a DBA who applies schema changes by hand
    (e.g. `sql_script("postgresql")`); nothing is connected to."""
    output = io.StringIO()
    cfg = config()
    cfg.attributes.update(dialect=dialect, output=output)
    command.upgrade(cfg, target, sql=True)
    return output.getvalue()
