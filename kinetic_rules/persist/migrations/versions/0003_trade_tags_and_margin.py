"""Trades remember their entry tags, and a futures trade its margin and liquidation price.

Revision ID: 0003_trade_tags_and_margin
Revises: 0002_trade_query_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_trade_tags_and_margin"
down_revision: str | None = "0002_trade_query_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Trades stored before tags existed have none: an empty list, written "".
    op.add_column("trades", sa.Column("tags", sa.String(1000), nullable=False, server_default=""))
    op.add_column("trades", sa.Column("margin", sa.Double(), nullable=True))
    op.add_column("trades", sa.Column("liquidation_price", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trades") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("liquidation_price")
        batch.drop_column("margin")
        batch.drop_column("tags")
