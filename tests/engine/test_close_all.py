"""The backtest's window of closes ahead (engine/close_all.py) gives what a fresh check
gives: positions join it one by one, and each adds its part to sums that are never
recomputed, yet every value and every close-all found is `standing`'s, to the bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.engine.close_all import SweepWindow, first_close_all
from kinetic_rules.engine.portfolio_values import Ledger, nanoseconds, portfolio_rules, standing
from tests.engine.test_portfolio_rules import plan_of
from tests.engine.test_portfolio_values import STEP, books, candle

PLAN = plan_of("""
protections:
  loss:
    active: open_profit_ratio < -0.4%
    close_all: true
  crowded:
    active: exposure > 25% and today_lowest_profit_ratio < 1%
    close_all: true
entry:
  long:
    go: volume > 100
""")
CLOSES = pd.DatetimeIndex([candle(k) + STEP for k in range(29)])


@given(books(), st.lists(st.integers(0, 28), min_size=5, max_size=5))
def test_positions_joining_a_window_one_by_one_get_the_values_of_a_fresh_check(
    book: Ledger, starts: list[int]
) -> None:
    rules = portfolio_rules(PLAN)
    assert len(rules.close_all) == 2
    everyone = sorted(book.slots, key=lambda p: p.id)
    starts = sorted(starts)
    window = SweepWindow.over(CLOSES, starts[0], len(CLOSES), STEP.value)
    for joined in range(1, len(everyone) + 1):
        now = replace(book, slots=everyone[:joined])
        start = starts[min(joined, len(starts) - 1)]
        at, values = window.values(now, start)
        np.testing.assert_array_equal(at, nanoseconds(CLOSES[start:]))
        fresh = standing(now, CLOSES[start:]).values
        assert list(values) == list(fresh)
        for name in fresh:
            np.testing.assert_array_equal(values[name], fresh[name], err_msg=name)
        found = window.check(PLAN, rules, now, start)
        assert found == first_close_all(PLAN, rules, now, CLOSES[start:])
    assert not window.stale(book)


@given(books())
def test_a_position_played_again_makes_the_window_stale(book: Ledger) -> None:
    window = SweepWindow.over(CLOSES, 0, len(CLOSES), STEP.value)
    window.values(book, 0)
    assert not window.stale(book)
    book.slots[0].cut = ("loss", candle(3))
    assert window.stale(book)
