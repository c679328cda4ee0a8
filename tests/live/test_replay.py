"""Replaying recorded candles through the live runtime gives the backtest's trades, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinetic_rules.backtest.runner import BacktestRequest, prepare, simulate
from kinetic_rules.engine.model import Trade
from kinetic_rules.engine.orders import Event
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.source import ReplaySource
from tests.conftest import STRATEGIES

BUSY = Path(__file__).parent / "strategies" / "busy.yaml"
MARGIN_CALLS = Path(__file__).parent / "strategies" / "margin_calls.yaml"
V3 = STRATEGIES / "kinetic_v3.yaml"


def fingerprint(trade: Trade) -> tuple[object, ...]:
    fills = tuple((f.time, f.price, f.amount, f.fee, f.reason) for f in trade.fills)
    return (
        trade.pair, trade.side, trade.regime, trade.signal_time, trade.entry_time,
        trade.entry_price, trade.amount, trade.stake, trade.leverage, trade.initial_stop,
        trade.exit_time, trade.exit_price, trade.exit_reason, trade.stop, fills, trade.tags,
        trade.margin, trade.liquidation_price,
    )  # fmt: skip


def replay(request: BacktestRequest) -> Runtime:
    prepared = prepare(request)
    source = ReplaySource(prepared.plan, prepared.feed, prepared.pairs, request.start)
    runtime = Runtime(prepared.plan, source)
    for step in source.steps():
        runtime.step(step)
    runtime.finish(len(source.timeline) - 1)
    return runtime


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "overrides"),
    [
        (STRATEGIES / "kinetic_empire.yaml", {}),
        (STRATEGIES / "kinetic_empire.yaml", {"roc_threshold": "0.3", "trail_activation": "1%"}),
        (BUSY, {}),
        (STRATEGIES / "kinetic_v3.yaml", {}),
        (STRATEGIES / "confluence.yaml", {}),
        (MARGIN_CALLS, {}),
        (STRATEGIES / "confluence.yaml", {"daily_loss_limit": "0.4%"}),
        (STRATEGIES / "adaptive_mtf.yaml", {"atr_days": "7"}),
    ],
    ids=[
        "kinetic_empire",
        "kinetic_empire_busier",
        "every_mechanism",
        "kinetic_v3_futures",
        "confluence",
        "liquidations_tags_kelly_cap",
        "confluence_daily_loss_limit",
        "adaptive_mtf_correlated_exposure",
    ],
)
def test_replay_equals_backtest_trade_for_trade(
    fixture_store: Path, strategy: Path, overrides: dict[str, str]
) -> None:
    request = BacktestRequest(strategy, fixture_store, overrides=overrides)
    prepared = prepare(request)
    backtest = simulate(prepared.plan, prepared.feed, prepared.pairs)
    live = replay(request)
    assert len(backtest.trades) >= 5
    assert [fingerprint(t) for t in live.trades()] == [fingerprint(t) for t in backtest.trades]


@pytest.mark.slow
def test_replay_equals_backtest_when_the_portfolio_closes_everything(fixture_store: Path) -> None:
    """Kinetic v3's emergency exit depends on every open trade at every close: the backtest
    finds the first close where it fires, the live runtime meets each close as it comes."""
    request = BacktestRequest(V3, fixture_store, overrides={"max_open_loss": "0.1%"})
    prepared = prepare(request)
    backtest = simulate(prepared.plan, prepared.feed, prepared.pairs)
    live = replay(request)
    emergencies = [t for t in backtest.trades if t.exit_reason == "protection:emergency"]
    assert len(emergencies) >= 10
    assert len({t.exit_time for t in emergencies}) < len(emergencies)  # several at one close
    assert [fingerprint(t) for t in live.trades()] == [fingerprint(t) for t in backtest.trades]


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def notify(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


def test_each_trade_is_announced_once_when_opened_and_once_when_closed(fixture_store: Path) -> None:
    prepared = prepare(BacktestRequest(BUSY, fixture_store))
    source = ReplaySource(prepared.plan, prepared.feed, prepared.pairs)
    recorder = Recorder()
    runtime = Runtime(prepared.plan, source, notifiers=[recorder])
    for step in source.steps():
        runtime.step(step)
    runtime.finish(len(source.timeline) - 1)
    opened = [e.data["trade"] for e in recorder.events if e.kind == "trade_opened"]
    closed = [e.data["trade"] for e in recorder.events if e.kind == "trade_closed"]
    ids = [t.id for t in runtime.trades()]
    assert sorted(opened) == sorted(ids) and sorted(closed) == sorted(ids)
    first = next(e for e in recorder.events if e.kind == "trade_closed")
    assert "profit" in first.data and first.message.startswith("Closed ")


def test_after_a_stop_request_no_trade_opens_but_open_ones_are_followed(
    fixture_store: Path,
) -> None:
    prepared = prepare(BacktestRequest(BUSY, fixture_store))
    source = ReplaySource(prepared.plan, prepared.feed, prepared.pairs)
    runtime = Runtime(prepared.plan, source)
    steps = list(source.steps())
    half = len(steps) // 2
    for step in steps[:half]:
        runtime.step(step)
    before = {t.id for t in runtime.trades()}
    runtime.request_stop()
    for step in steps[half:]:
        runtime.step(step)
    after = runtime.trades()
    assert {t.id for t in after} == before  # nothing new was opened
    assert all(t.exit_time is not None for t in after)  # what was open got closed on its rules


def test_chat_commands_describe_the_running_bot(fixture_store: Path) -> None:
    prepared = prepare(BacktestRequest(BUSY, fixture_store))
    source = ReplaySource(prepared.plan, prepared.feed, prepared.pairs)
    runtime = Runtime(prepared.plan, source)
    assert runtime.status_text() == "No open trades."
    for step in source.steps():
        runtime.step(step)
        if any(t.exit_time is None for t in runtime.trades()):
            break
    open_trade = next(t for t in runtime.trades() if t.exit_time is None)
    assert open_trade.pair in runtime.status_text()
    assert runtime.profit_text().endswith("USDT")
    runtime.request_stop()
    assert runtime.stopping
