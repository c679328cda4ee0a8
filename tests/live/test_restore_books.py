"""A restarted bot decides as if it had never stopped: the portfolio's history survives.

The rules read more than the open positions: Kelly sizes from closed profits (here the
whole strategy's, `per: strategy`), cooldowns from the last exit per pair and per entry
tag, the daily loss limit from today's closed trades. These tests stop a replay of real
candles at many closes, keep its books the way the trade store keeps them (JSON in the
store's state table), start a fresh runtime from them alone, and go on: the trades,
their ids included, equal those of the replay that never stopped.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.backtest.runner import BacktestRequest, prepare
from kinetic_rules.engine.books import PortfolioBooks
from kinetic_rules.engine.model import Trade
from kinetic_rules.engine.orders import Book
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.source import ReplaySource
from kinetic_rules.persist.book import book_from_dict, book_to_dict
from kinetic_rules.persist.serialize import trade_from_dict, trade_to_dict
from tests.conftest import STRATEGIES
from tests.live.test_replay import fingerprint

FIELD_BY_FIELD = True
pytestmark = pytest.mark.slow  # three replays of a month of 15m candles


@pytest.fixture(params=["strategy", "pair"])
def confluence(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """confluence.yaml (Kelly per strategy, a tag cooldown, a daily loss limit) with Kelly
    taking over after 3 closed trades instead of 50, so the fixtures' month exercises it;
    and the same with Kelly per pair."""
    text = (STRATEGIES / "confluence.yaml").read_text()
    kelly = "kelly: {min_trades: 50, lookback: 50, reward_risk: 2.0, per: strategy}"
    assert kelly in text
    ours = kelly.replace("50, lookback: 50", "3, lookback: 8").replace("strategy", request.param)
    path = tmp_path / "confluence.yaml"
    path.write_text(text.replace(kelly, ours))
    return path


def kept(runtime: Runtime) -> PortfolioBooks:
    """The books as the trade store would give them back after a kill: through its JSON."""
    portfolio = runtime.portfolio
    book = Book("kr-test-", portfolio.starting_balance, portfolio.books())
    return book_from_dict(json.loads(json.dumps(book_to_dict(book)))).portfolio


def restarted(source: ReplaySource, before: Runtime) -> Runtime:
    """A new runtime holding what a restart has: the unfinished positions (their trades
    through the store's serialization) and the books. Nothing else of `before` survives."""
    runtime = Runtime(before.plan, source)
    for position in before.portfolio.unresolved():
        again = copy.copy(position)
        if position.trade is not None:
            again.trade = trade_from_dict(json.loads(json.dumps(trade_to_dict(position.trade))))
        runtime.portfolio.restore(again)
    runtime.portfolio.restore_books(kept(before))
    return runtime


def run(
    request: BacktestRequest, every: int | None = None
) -> tuple[list[Trade], list[dict[str, object]]]:
    """Replay `request`, restarting after every `every`-th close; every trade made, and
    what the books held at each restart (to check the test restarts where it matters)."""
    prepared = prepare(request)
    source = ReplaySource(prepared.plan, prepared.feed, prepared.pairs)
    runtime = Runtime(prepared.plan, source)
    finished: dict[int, Trade] = {}
    seen: list[dict[str, object]] = []
    for step in source.steps():
        runtime.step(step)
        if every is None or step % every != every - 1:
            continue
        books = runtime.portfolio.books()
        moment = source.timeline[step] + runtime.step_length
        seen.append(describe(books, moment, runtime))
        carried = {p.trade.id for p in runtime.portfolio.unresolved() if p.trade is not None}
        finished |= {t.id: t for t in runtime.portfolio.trades if t.id not in carried}
        runtime = restarted(source, runtime)
        if FIELD_BY_FIELD:
            assert runtime.portfolio.books() == books  # field by field, before any new close
    runtime.finish(len(source.timeline) - 1)
    finished |= {t.id: t for t in runtime.portfolio.trades}
    trades = sorted(finished.values(), key=lambda t: (t.entry_time, t.pair))
    return trades, seen


def describe(books: PortfolioBooks, moment: pd.Timestamp, runtime: Runtime) -> dict[str, object]:
    cooldown = runtime.plan.strategy.spec.entry.cooldown
    assert cooldown is not None and cooldown.tag is not None
    wait = pd.Timedelta(seconds=cooldown.tag)
    return {
        "tag_cooling": any(moment < at + wait for at in books.tag_exit.values()),
        "kelly": len(books.all_profits) >= 3
        and max(len(p) for p in books.closed_profits.values()) >= 3,
        "losing_today": sum(p for _, _, p in books.closed_today) < 0,
    }


def test_a_replay_restarted_at_many_closes_equals_the_uninterrupted_one(
    fixture_store: Path, confluence: Path
) -> None:
    request = BacktestRequest(confluence, fixture_store, overrides={"daily_loss_limit": "0.4%"})
    whole, _ = run(request)
    assert len(whole) >= 10
    resumed, seen = run(request, every=37)  # a restart every 37 closes: about 9 hours
    # The restarts happened where the history matters: a tag cooldown running, Kelly
    # sizing from the strategy's closed trades, a day's losses counting toward the limit.
    assert any(s["tag_cooling"] for s in seen)
    assert any(s["kelly"] for s in seen)
    assert any(s["losing_today"] for s in seen)
    assert [(t.id, *fingerprint(t)) for t in resumed] == [(t.id, *fingerprint(t)) for t in whole]
