"""Alembic environment: runs inside the transaction TradeStore opened for the upgrade,
or, offline, writes the SQL for a named dialect (`migrations.sql_script`).

There is no alembic.ini: `kinetic_rules.persist.migrations` builds the Alembic config
in code and hands over its connection, so users never run Alembic themselves.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from kinetic_rules.persist.migrations import VERSION_TABLE
from kinetic_rules.persist.models import Base

attributes = context.config.attributes
if context.is_offline_mode():
    context.configure(
        dialect_name=attributes["dialect"],
        output_buffer=attributes["output"],
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
else:
    connection = attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations through kinetic_rules.persist.migrations.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite can only change tables by copying them
    )
with context.begin_transaction():
    context.run_migrations()
