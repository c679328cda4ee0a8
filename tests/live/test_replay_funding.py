"""A replay through the live runtime, fed the same funding, mark prices and exchange rules
as the backtest, gives the backtest's trades, funding included, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinetic_rules.backtest.runner import BacktestRequest, prepare, simulate
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.source import ReplaySource
from tests.conftest import STRATEGIES
from tests.live.test_replay import fingerprint

BOTH_SIDES = Path(__file__).parents[1] / "engine" / "strategies" / "futures_both_sides.yaml"


@pytest.mark.parametrize(
    ("strategy", "overrides"),
    [
        (STRATEGIES / "kinetic_v3.yaml", {}),
        (BOTH_SIDES, {}),
        (STRATEGIES / "adaptive_mtf.yaml", {"atr_days": "7"}),
    ],
    ids=["kinetic_v3", "both_sides_liquidations", "adaptive_mtf"],
)
def test_replay_with_funding_mark_prices_and_rules_equals_the_backtest(
    futures_store: Path, strategy: Path, overrides: dict[str, str]
) -> None:
    request = BacktestRequest(strategy, futures_store, overrides=overrides)
    prepared = prepare(request)
    assert prepared.extras.rules is not None
    backtest = simulate(prepared.plan, prepared.feed, prepared.pairs, extras=prepared.extras)
    source = ReplaySource(prepared.plan, prepared.feed, prepared.pairs, extras=prepared.extras)
    runtime = Runtime(prepared.plan, source)
    for step in source.steps():
        runtime.step(step)
    runtime.finish(len(source.timeline) - 1)
    live = runtime.trades()
    assert len(backtest.trades) >= 5
    assert [(*fingerprint(t), t.funding) for t in live] == [
        (*fingerprint(t), t.funding) for t in backtest.trades
    ]
    assert sum(abs(t.funding) for t in backtest.trades) > 0
