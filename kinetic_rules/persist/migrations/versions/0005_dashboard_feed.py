"""The dashboard's record of a session: the decision feed, the equity at each close and
the candles the session saw, so `kinetic-rules ui --db` shows them after it stopped.

Revision ID: 0005_dashboard_feed
Revises: 0004_trade_funding
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_dashboard_feed"
down_revision: str | None = "0004_trade_funding"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("verdict", sa.String(100), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(op.f("ix_decisions_time"), "decisions", ["time"])
    op.create_table(
        "equity",
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("realized", sa.Double(), nullable=False),
        sa.Column("total", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("time", name=op.f("pk_equity")),
    )
    op.create_table(
        "candles",
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("pair", "time", name=op.f("pk_candles")),
    )
    op.create_index(op.f("ix_candles_time"), "candles", ["time"])


def downgrade() -> None:
    for table in ("candles", "equity", "decisions"):
        op.drop_table(table)
