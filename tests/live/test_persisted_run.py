"""A run keeps every trade in the trade store as it happens; running again duplicates nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kinetic_rules.backtest.runner import BacktestRequest, prepare, simulate
from kinetic_rules.cli.app import main
from kinetic_rules.data.timerange import parse_timerange
from kinetic_rules.persist import TradeStore
from tests.live.test_replay import BUSY, fingerprint

TIMERANGE = "20240301-20240311"


def test_a_replay_stores_the_backtests_trades_once(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"
    args = ["run", str(BUSY), "--replay", str(fixture_store), "--db", url, "--quiet"]
    args += ["--timerange", TIMERANGE]  # ten days hold enough trades; the month adds nothing
    assert main(args) == 0
    assert main(args) == 0  # the same run again: every trade is already there
    start, end = parse_timerange(TIMERANGE)
    prepared = prepare(BacktestRequest(BUSY, fixture_store, start=start, end=end))
    backtest = simulate(prepared.plan, prepared.feed, prepared.pairs, start=start)
    assert len(backtest.trades) >= 10
    with TradeStore(url) as store:
        stored = store.trades(mode="replay", strategy="busy")
        events = store.events(kinds=["trade_closed"])
    assert len(events) == 2 * len(backtest.trades)  # each run announced each close once
    assert len(stored) == len(backtest.trades)
    key = lambda t: fingerprint(t)[1:]  # noqa: E731 - ids differ: the database assigns its own
    assert sorted(map(key, stored), key=repr) == sorted(map(key, backtest.trades), key=repr)
    capsys.readouterr()
    assert main(["trades", "--db", url, "--format", "json", "--outcome", "win"]) == 0
    wins = json.loads(capsys.readouterr().out)
    assert len(wins) == sum(t.is_winner for t in backtest.trades)
