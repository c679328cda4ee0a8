"""Indexes for the queries `kinetic-rules trades` runs: by pair and entry time, by exit.

Revision ID: 0002_trade_query_indexes
Revises: 0001_initial
"""

from __future__ import annotations

from alembic import op

revision = "0002_trade_query_indexes"
down_revision: str | None = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_trades_pair_entry_time"), "trades", ["pair", "entry_time"])
    op.create_index(op.f("ix_trades_exit_time"), "trades", ["exit_time"])


def downgrade() -> None:
    op.drop_index(op.f("ix_trades_exit_time"), table_name="trades")
    op.drop_index(op.f("ix_trades_pair_entry_time"), table_name="trades")
