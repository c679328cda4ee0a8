"""A futures replay keeps every trade's funding in the trade store, and the stored profit
counts it, as the runtime's does."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinetic_rules.backtest.runner import BacktestRequest, prepare
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.source import ReplaySource
from kinetic_rules.persist.sink import StoreSink
from kinetic_rules.persist.store import TradeStore

BOTH_SIDES = Path(__file__).parents[1] / "engine" / "strategies" / "futures_both_sides.yaml"


def test_stored_trades_keep_their_funding_and_profit(futures_store: Path, tmp_path: Path) -> None:
    prepared = prepare(BacktestRequest(BOTH_SIDES, futures_store))
    source = ReplaySource(prepared.plan, prepared.feed, prepared.pairs, extras=prepared.extras)
    with TradeStore(f"sqlite:///{tmp_path / 'trades.sqlite'}") as store:
        runtime = Runtime(prepared.plan, source, sink=StoreSink(store, strategy="t", mode="replay"))
        for step in source.steps():
            runtime.step(step)
        runtime.finish(len(source.timeline) - 1)
        live = sorted(runtime.trades(), key=lambda t: (t.entry_time, t.pair))
        stored = sorted(store.trades(), key=lambda t: (t.entry_time, t.pair))
    assert len(stored) == len(live) >= 5
    assert any(t.funding for t in live)
    assert [t.funding for t in stored] == [t.funding for t in live]
    closed = [(s, t) for s, t in zip(stored, live, strict=True) if not t.is_open]
    assert [s.profit for s, _ in closed] == pytest.approx([t.profit for _, t in closed])
