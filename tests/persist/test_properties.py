"""The seed's persistence properties (23–25), checked on generated trades.

**Feature: kinetic-empire, Property 23: Trade Persistence Completeness**
**Feature: kinetic-empire, Property 24: Trade Query Filtering**
**Feature: kinetic-empire, Property 25: Trade Serialization Round Trip**
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from kinetic_rules.engine.model import Trade
from kinetic_rules.persist import (
    deserialize_trade,
    deserialize_trades,
    serialize_trade,
    serialize_trades,
)
from kinetic_rules.persist.models import MODES
from tests.persist.conftest import PAIRS, empty_store, names, stored, times, trades

EXAMPLES = settings(max_examples=100, deadline=None)


@EXAMPLES
@given(trades(), names, st.sampled_from(MODES))
def test_23_every_field_of_an_opened_and_closed_trade_is_persisted(
    trade: Trade, strategy: str, mode: str
) -> None:
    """Opened: time, pair, entry price, stake, regime, stop; closed: time, exit price,
    profit and exit reason — written the way the runtime writes them, read back whole."""
    entry_fill, *closing = trade.fills
    opened = replace(trade, exit_time=None, exit_price=None, exit_reason=None,
                     fills=[entry_fill])  # fmt: skip
    with empty_store() as store:
        trade_id = store.open_trade(opened, strategy=strategy, mode=mode)
        assert store.trades() == [stored(opened, trade_id)]
        if closing:
            *partials, last = closing
            for fill in partials:
                store.add_fill(trade_id, fill)
            assert trade.exit_time is not None and trade.exit_price is not None
            assert trade.exit_reason is not None
            store.close_trade(
                trade_id, exit_time=trade.exit_time, exit_price=trade.exit_price,
                exit_reason=trade.exit_reason, stop=trade.stop, fill=last,
            )  # fmt: skip
        back = store.trade(trade_id)
        assert back == stored(trade, trade_id)
        # profit/loss is a stored column too (the seed asks for it), equal to the record's.
        profit = store._read(
            lambda s: s.execute(text("SELECT profit FROM trades WHERE id = :i"), {"i": trade_id})
        ).scalar_one()
        assert profit == (None if trade.is_open else trade.profit)


@st.composite
def stored_trades(draw: st.DrawFn) -> list[tuple[Trade, str, str]]:
    """Trades with their strategy and mode, no two alike (the store would merge them)."""
    rows = draw(st.lists(st.tuples(trades(), st.sampled_from(["ke", "v3"]),
                                   st.sampled_from(["paper", "live"])), max_size=14))  # fmt: skip
    seen: set[tuple[object, ...]] = set()
    unique = []
    for trade, strategy, mode in rows:
        key = (strategy, mode, trade.pair, trade.side, trade.entry_time)
        if key not in seen:
            seen.add(key)
            unique.append((trade, strategy, mode))
    return unique


@EXAMPLES
@given(
    stored_trades(),
    st.none() | st.sampled_from(PAIRS),
    st.none() | times,
    st.none() | times,
    st.none() | st.sampled_from(["win", "loss", "open"]),
    st.none() | st.sampled_from(["ke", "v3"]),
    st.none() | st.sampled_from(["paper", "live"]),
    st.none() | st.integers(1, 5),
)
def test_24_queries_return_exactly_the_matching_trades(
    rows: list[tuple[Trade, str, str]],
    pair: str | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    outcome: str | None,
    strategy: str | None,
    mode: str | None,
    limit: int | None,
) -> None:
    with empty_store() as store:
        kept = []
        for trade, trade_strategy, trade_mode in rows:
            trade_id = store.open_trade(trade, strategy=trade_strategy, mode=trade_mode)
            kept.append((stored(trade, trade_id), trade_strategy, trade_mode))
        # Queries on fixed boundaries too: an entry time itself, for the inclusive start.
        if start is None and rows and pair is None:
            start = rows[0][0].entry_time

        def matches(t: Trade, s: str, m: str) -> bool:
            won = {"win": not t.is_open and t.is_winner, "loss": not t.is_open and not t.is_winner,
                   "open": t.is_open, None: True}[outcome]  # fmt: skip
            return (
                won
                and pair in (None, t.pair)
                and strategy in (None, s)
                and mode in (None, m)
                and (start is None or t.entry_time >= start)
                and (end is None or t.entry_time < end)
            )

        expected = sorted((t for t, s, m in kept if matches(t, s, m)),
                          key=lambda t: (t.entry_time, t.id))  # fmt: skip
        if limit is not None:
            expected = expected[-limit:]
        got = store.trades(pair=pair, start=start, end=end, outcome=outcome,  # type: ignore[arg-type]
                           strategy=strategy, mode=mode, limit=limit)  # fmt: skip
        assert got == expected
        if outcome == "open" and limit is None and start is None and end is None and not pair:
            assert store.open_trades(strategy, mode) == expected


@EXAMPLES
@given(trades(pairs=names))
def test_25_json_round_trip(trade: Trade) -> None:
    assert deserialize_trade(serialize_trade(trade)) == trade
    assert deserialize_trades(serialize_trades([trade, trade])) == [trade, trade]


@settings(max_examples=30, deadline=None)
@given(st.lists(trades(), max_size=4))
def test_25_what_the_store_gives_back_round_trips_through_json(batch: list[Trade]) -> None:
    with empty_store() as store:
        for number, trade in enumerate(batch):
            store.open_trade(trade, strategy=f"s{number}", mode="replay")
        back = store.trades()
    assert deserialize_trades(serialize_trades(back)) == back
