"""Futures trades remember the funding they paid (positive) or received (negative).

Revision ID: 0004_trade_funding
Revises: 0003_trade_tags_and_margin
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_trade_funding"
down_revision: str | None = "0003_trade_tags_and_margin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Trades stored before funding was charged paid none.
    op.add_column("trades", sa.Column("funding", sa.Double(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("trades") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("funding")
