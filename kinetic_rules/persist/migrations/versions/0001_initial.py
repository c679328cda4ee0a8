"""The first schema: trades with their fills, orders, the event log, runtime state.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A migration is a frozen snapshot: it spells out its columns instead of
    # importing the models, which keep changing after it.
    op.create_table(
        "trades",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("strategy", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("regime", sa.String(100), nullable=True),
        sa.Column("signal_time", sa.BigInteger(), nullable=False),
        sa.Column("entry_time", sa.BigInteger(), nullable=False),
        sa.Column("entry_price", sa.Double(), nullable=False),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.Column("stake", sa.Double(), nullable=False),
        sa.Column("leverage", sa.Double(), nullable=False),
        sa.Column("initial_stop", sa.Double(), nullable=False),
        sa.Column("stop", sa.Double(), nullable=True),
        sa.Column("stop_time", sa.BigInteger(), nullable=True),
        sa.Column("exit_time", sa.BigInteger(), nullable=True),
        sa.Column("exit_price", sa.Double(), nullable=True),
        sa.Column("exit_reason", sa.String(200), nullable=True),
        sa.Column("profit", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trades")),
        sa.UniqueConstraint(
            *("strategy", "mode", "pair", "side", "entry_time"),
            name=op.f("uq_trades_strategy_mode_pair_side_entry_time"),
        ),
        sa.CheckConstraint("mode IN ('paper', 'live', 'replay')", name=op.f("ck_trades_mode")),
        sa.CheckConstraint("side IN ('long', 'short')", name=op.f("ck_trades_side")),
    )
    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trade_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.Column("fee", sa.Double(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("trade_id", "seq", name=op.f("uq_fills_trade_id_seq")),
        sa.ForeignKeyConstraint(
            ["trade_id"], ["trades.id"], name=op.f("fk_fills_trade_id_trades"), ondelete="CASCADE"
        ),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("trade_id", sa.Integer(), nullable=True),
        sa.Column("exchange_id", sa.String(100), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.Column("filled", sa.Double(), nullable=False),
        sa.Column("average", sa.Double(), nullable=True),
        sa.Column("fee", sa.Double(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_id", name=op.f("uq_orders_client_id")),
        sa.ForeignKeyConstraint(
            ["trade_id"], ["trades.id"], name=op.f("fk_orders_trade_id_trades"), ondelete="SET NULL"
        ),
    )
    op.create_index(op.f("ix_orders_status"), "orders", ["status"])
    op.create_index(op.f("ix_orders_trade_id"), "orders", ["trade_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_time"), "events", ["time"])
    op.create_table(
        "runtime_state",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_runtime_state")),
    )


def downgrade() -> None:
    for table in ("runtime_state", "events", "orders", "fills", "trades"):
        op.drop_table(table)
