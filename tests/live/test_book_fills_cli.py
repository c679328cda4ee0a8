"""`kinetic-rules run FILE --fills book` as its own process, in the stand-in's time.

Paper trading on the live order book attaches the executor, so the session follows its
orders every poll between closes. Polls ten seconds apart land a moment after a five-
minute close; that close must still be traded, not passed by for the next one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.persist import TradeStore
from tests.live.test_live_trading import PAIRS
from tests.live.test_sigkill import START, _log, kill_when, launch
from tests.standin import ExchangeStandin


def test_paper_trading_on_the_order_book_trades_as_a_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)  # ten minutes before the strategy's first entry signal
        bot = launch(standin, tmp_path, url, "--fills", "book")
        until = int((START + pd.Timedelta(hours=2)).timestamp() * 1000)
        kill_when(bot, lambda: standin.clock.now() >= until, tmp_path)
        assert "Traceback" not in _log(tmp_path, tail=None)
        assert standin.requests("/api/v3/depth"), "fills are taken from the order book"
        assert not standin.requests("/api/v3/order"), "no order reaches the exchange"
    with TradeStore(url) as store:
        closed = [t for t in store.trades(mode="paper") if t.exit_time is not None]
    assert closed, _log(tmp_path)
    for trade in closed:  # bought and sold again, in paper fills of the order book
        bought = sum(f.amount for f in trade.fills if f.reason == "entry")
        sold = sum(f.amount for f in trade.fills if f.reason != "entry")
        assert bought > 0 and sold == pytest.approx(bought)
