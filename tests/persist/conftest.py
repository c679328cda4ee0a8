"""Trades for the persistence tests: hypothesis strategies and a fresh store per test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import strategies as st
from sqlalchemy import delete

from kinetic_rules.engine.model import Fill, Trade
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.models import (
    CandleRow,
    DecisionRow,
    EquityRow,
    EventRow,
    FillRow,
    OrderRow,
    StateRow,
    TradeRow,
)

PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BTC/USDT:USDT")
REASONS = ("take_profit_1", "trend_break", "stop_loss", "trailing_stop", "end_of_data")
EPOCH_2024 = pd.Timestamp("2024-01-01", tz="UTC").value
YEAR_NS = 366 * 24 * 3600 * 10**9

# Prices and sizes as exchanges quote them, down to the smallest steps; any bit pattern
# in that range must come back exactly.
prices = st.floats(min_value=1e-8, max_value=1e7, allow_nan=False, allow_infinity=False)
amounts = st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False)
fees = st.floats(min_value=0, max_value=1e3, allow_nan=False, allow_infinity=False)
# Nanosecond resolution on purpose: stored times must not be rounded.
times = st.integers(EPOCH_2024, EPOCH_2024 + YEAR_NS).map(lambda ns: pd.Timestamp(ns, tz="UTC"))
stops = prices | st.sampled_from([float("-inf"), float("inf")])
pair_names = st.sampled_from(PAIRS)
tag_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
names = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), min_size=1, max_size=40)


@st.composite
def trades(draw: st.DrawFn, pairs: st.SearchStrategy[str] = pair_names) -> Trade:
    """A trade as the runtime hands it over: open, or closed with its closing fills."""
    entry_time = draw(times)
    entry_price, amount = draw(prices), draw(amounts)
    trade = Trade(
        id=0,
        pair=draw(pairs),
        side=draw(st.sampled_from(["long", "short"])),
        regime=draw(st.none() | st.sampled_from(["bull", "bear", "flash crash"])),
        signal_time=entry_time - pd.Timedelta(minutes=5),
        entry_time=entry_time,
        entry_price=entry_price,
        amount=amount,
        stake=draw(amounts),
        leverage=draw(st.sampled_from([1.0, 2.0, 3.5, 10.0])),
        initial_stop=draw(stops),
        stop=draw(st.none() | stops),
        fills=[Fill(entry_time, entry_price, amount, draw(fees), "entry")],
        tags=tuple(draw(st.lists(tag_names, max_size=3, unique=True))),
    )
    if draw(st.booleans()):  # a futures trade: isolated margin and a liquidation price
        trade.margin, trade.liquidation_price = draw(amounts), draw(prices)
    if draw(st.booleans()):
        later = st.integers(1, 10**15).map(lambda ns: entry_time + pd.Timedelta(ns, unit="ns"))
        # Distinct fills: recording the very same fill twice is a repeat, kept once.
        closing = draw(st.lists(st.tuples(later, prices, amounts, fees, st.sampled_from(REASONS)),
                                min_size=1, max_size=3, unique=True))  # fmt: skip
        trade.fills += [Fill(*c) for c in sorted(closing, key=lambda c: c[0])]
        trade.exit_time = trade.fills[-1].time
        trade.exit_price = draw(prices)
        trade.exit_reason = trade.fills[-1].reason
    return trade


def stored(trade: Trade, trade_id: int) -> Trade:
    """The trade as the store gives it back: with the id the database assigned."""
    return Trade(**{**trade.__dict__, "id": trade_id, "fills": list(trade.fills)})


def db_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return db_url(tmp_path / "trades.sqlite")


@pytest.fixture
def store(url: str) -> Iterator[TradeStore]:
    with TradeStore(url, retry_interval=0.0, busy_timeout=0.05) as opened:
        yield opened


_MEMORY: list[TradeStore] = []


@contextmanager
def empty_store() -> Iterator[TradeStore]:
    """An in-memory store emptied for each hypothesis example: migrating a new database
    for every example would spend most of the test's time on creating tables."""
    if not _MEMORY:
        _MEMORY.append(TradeStore("sqlite://", retry_interval=0.0))
    store = _MEMORY[0]
    tables = (FillRow, OrderRow, TradeRow, EventRow, StateRow, DecisionRow, EquityRow, CandleRow)
    store._write(lambda s: [s.execute(delete(table)) for table in tables])
    yield store
