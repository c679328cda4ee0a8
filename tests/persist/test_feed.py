"""The dashboard's record of a session in the trade store: what one close writes comes
back exactly, a repeated close replaces itself, and every bound holds whatever the
sequence of closes (the decision feed's days and rows, the candles' window)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules import secrets
from kinetic_rules.errors import ConfigError
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.feed import (
    CloseRecord,
    EquityAt,
    Retention,
    StoredCandle,
    StoredDecision,
)
from tests.persist.conftest import empty_store

T0 = pd.Timestamp("2024-03-05 00:05", tz="UTC")
STEP = pd.Timedelta(minutes=5)
LINES = [
    {"label": "cross", "text": "crossed_above(fast, slow)", "value": "true", "holds": True,
     "parts": [{"text": "ema(close, 9)", "value": "64123.5"}]},
    {"label": "room", "text": "rsi(close, 14) < 70", "value": "false", "holds": False,
     "parts": []},
]  # fmt: skip


def decision(time: pd.Timestamp, pair: str = "BTC/USDT", outcome: str = "none") -> StoredDecision:
    return StoredDecision(time, pair, "long", "no signal", 1, 2, outcome, LINES)


def candle(pair: str, time: pd.Timestamp, price: float = 100.0) -> StoredCandle:
    return StoredCandle(pair, time, price, price * 1.01, price * 0.99, price * 1.002)


def close(time: pd.Timestamp, **extra: object) -> CloseRecord:
    return CloseRecord(time=time, realized=1000.0, total=1003.25, **extra)  # type: ignore[arg-type]


KEEP = Retention(days=7)


def test_a_close_comes_back_as_it_was_written(store: TradeStore) -> None:
    record = close(
        T0,
        decisions=[decision(T0), decision(T0, "ETH/USDT", "entered: position #1")],
        candles=[candle("BTC/USDT", T0 - STEP), candle("ETH/USDT", T0 - STEP, 3000.123456789)],
        snapshot={"stake_currency": "USDT", "positions": [{"pair": "BTC/USDT", "price": 1.5}]},
    )
    store.record_closes([record], KEEP)
    found = store.decisions(10)
    assert [d.pair for d in found] == ["ETH/USDT", "BTC/USDT"]  # newest first
    assert found[1] == decision(T0)
    assert store.equity() == [EquityAt(T0, 1000.0, 1003.25)]
    assert store.candles("ETH/USDT", 10) == [candle("ETH/USDT", T0 - STEP, 3000.123456789)]
    assert store.last_close() == {
        "time": T0.isoformat(),
        "stake_currency": "USDT",
        "positions": [{"pair": "BTC/USDT", "price": 1.5}],
    }


def test_a_repeated_close_replaces_what_it_wrote(store: TradeStore) -> None:
    store.record_closes([close(T0, decisions=[decision(T0)], candles=[candle("A/B", T0)])], KEEP)
    again = close(T0, decisions=[decision(T0, "ETH/USDT")], candles=[candle("A/B", T0, 5.0)])
    store.record_closes([again], KEEP)
    assert [d.pair for d in store.decisions(10)] == ["ETH/USDT"]
    assert len(store.equity()) == 1
    assert store.candles("A/B", 10) == [candle("A/B", T0)]  # a closed candle never changes


def test_closes_written_together_equal_closes_written_one_by_one(tmp_path: Path) -> None:
    records = [
        close(T0 + i * STEP, decisions=[decision(T0 + i * STEP, f"P{i}/USDT")],
              candles=[candle("BTC/USDT", T0 + (i - 1) * STEP, 100.0 + i)],
              candles_since=T0 + (i - 3) * STEP, snapshot={"n": i})
        for i in range(6)
    ]  # fmt: skip
    with (
        TradeStore(f"sqlite:///{tmp_path / 'one.sqlite'}") as one,
        TradeStore(f"sqlite:///{tmp_path / 'all.sqlite'}") as together,
    ):
        for record in records:
            one.record_closes([record], KEEP)
        together.record_closes(records[:4], KEEP)
        together.record_closes(records[2:], KEEP)  # a restart repeats two closes
        for store in (one, together):
            assert [d.pair for d in store.decisions(10)] == [f"P{i}/USDT" for i in range(5, -1, -1)]
            assert [p.time for p in store.equity()] == [r.time for r in records]
            assert [c.open for c in store.candles("BTC/USDT", 10)] == [103.0, 104.0, 105.0]
            assert store.last_close() == {"time": records[-1].time.isoformat(), "n": 5}


def test_no_secret_reaches_the_stored_feed(
    store: TradeStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-live-7Qx3Vb9Lp2Zr"
    secrets.register(secret)
    shown = [{**LINES[0], "text": f"note {secret}", "parts": [{"text": secret, "value": "1"}]}]
    leaky = StoredDecision(T0, "BTC/USDT", "long", f"SIGNAL {secret}", 2, 2,
                           f"entered api_key={secret}", shown)  # fmt: skip
    store.record_closes([close(T0, decisions=[leaky], snapshot={"note": secret})], KEEP)
    kept = store.decisions(1)[0]
    assert secret not in repr(kept) and secret not in repr(store.last_close())
    store.close()
    database = Path(url.removeprefix("sqlite:///"))
    for path in database.parent.iterdir():  # the file, its write-ahead log, anything beside
        assert secret.encode() not in path.read_bytes(), path.name


def test_a_feed_kept_for_zero_days_keeps_no_decision_but_the_rest(store: TradeStore) -> None:
    store.record_closes([close(T0, decisions=[decision(T0)])], KEEP)
    store.record_closes([close(T0 + STEP, decisions=[decision(T0 + STEP)])], Retention(days=0))
    assert store.decisions(10) == []
    assert len(store.equity()) == 2


def test_retention_refuses_what_it_cannot_mean() -> None:
    for days in (-1.0, float("nan"), 3651.0):
        with pytest.raises(ValueError, match="the feed keeps from 0 to 3650 days"):
            Retention(days=days)


# Closes at increasing times, some far apart; each with a few decisions and candles.
gaps = st.lists(st.integers(1, 3 * 24 * 12), min_size=1, max_size=25)  # in 5-minute steps


@settings(max_examples=40, deadline=None)
@given(
    gaps=gaps,
    per_close=st.integers(0, 4),
    days=st.sampled_from([0.5, 1.0, 2.0]),
    rows=st.integers(1, 30),
    window=st.integers(1, 40),
)
def test_the_bounds_hold_after_any_sequence_of_closes(
    gaps: list[int], per_close: int, days: float, rows: int, window: int
) -> None:
    keep = Retention(days=days, rows=rows)
    written: list[StoredDecision] = []
    with empty_store() as store:
        time = T0
        for gap in gaps:
            time += gap * STEP
            made = [decision(time, f"P{i}/USDT") for i in range(per_close)]
            written += made
            candles = [candle("BTC/USDT", time - STEP * k) for k in range(3, 0, -1)]
            since = time - window * STEP
            record = close(time, decisions=made, candles=candles, candles_since=since)
            store.record_closes([record], keep)
            # the bounds, at every close: no decision older than `days` before this
            # close, none beyond the newest `rows`, no candle before `since`
            recent = [d for d in written if d.time >= time - pd.Timedelta(days=days)]
            kept = store.decisions(10_000)
            assert kept == list(reversed(recent))[: len(kept)]
            assert len(kept) == min(len(recent), rows)
            assert all(c.time >= since for c in store.candles("BTC/USDT", 10_000))
        assert [p.time for p in store.equity()] == sorted({T0 + STEP * sum(gaps[: i + 1])
                                                            for i in range(len(gaps))})  # fmt: skip


def test_a_reader_of_an_older_database_is_told_to_let_run_upgrade_it(tmp_path: Path) -> None:
    from tests.persist.test_migrations import at_revision

    path = tmp_path / "old.sqlite"
    at_revision(path, "0004_trade_funding")
    with pytest.raises(ConfigError, match="older schema"):
        TradeStore(f"sqlite:///{path}", read_only=True)
    with TradeStore(f"sqlite:///{path}") as writer:  # `run` upgrades it
        writer.record_closes([close(T0, decisions=[decision(T0)])], KEEP)
    with TradeStore(f"sqlite:///{path}", read_only=True) as reader:
        assert reader.decisions(5) == [decision(T0)]
