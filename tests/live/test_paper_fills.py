"""The paper broker's fill rules on a book, against any book hypothesis can draw."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.engine.fills import FillModel, entry_fill
from kinetic_rules.live.paper_fills import limit_resting, market_fill, take

prices = st.floats(min_value=0.001, max_value=100_000, allow_nan=False)
amounts = st.floats(min_value=0.0001, max_value=1_000, allow_nan=False)


@st.composite
def books(draw: st.DrawFn) -> tuple[list[list[float]], bool]:
    """One side of a book, best first: rising asks for a buy, falling bids for a sell."""
    buying = draw(st.booleans())
    levels = sorted(set(draw(st.lists(prices, min_size=1, max_size=12))), reverse=not buying)
    return [[p, draw(amounts)] for p in levels], buying


@given(books(), amounts, st.one_of(st.none(), prices))
def test_taking_never_beats_the_touch_nor_passes_the_limit(
    book: tuple[list[list[float]], bool], amount: float, limit: float | None
) -> None:
    levels, buying = book
    before = [list(level) for level in levels]
    reachable = sum(a for p, a in before if limit is None or (p <= limit if buying else p >= limit))
    taken = take(levels, amount, buying=buying, limit=limit)
    assert taken.amount == pytest.approx(min(amount, reachable), rel=1e-9, abs=1e-9)
    assert sum(a for _, a in before) - sum(a for _, a in levels) == pytest.approx(
        taken.amount, rel=1e-9, abs=1e-9
    )  # what was taken is gone from the book
    if taken.amount > 1e-9:
        touch = before[0][0]
        worse, better = (max, min) if buying else (min, max)
        assert better(taken.average, touch) == pytest.approx(touch)  # never better than the touch
        if limit is not None:
            assert worse(taken.average, limit) == pytest.approx(limit)  # never past the limit


@given(books(), amounts, st.floats(min_value=0, max_value=0.01))
def test_a_market_order_pays_the_slippage_on_what_the_book_gave(
    book: tuple[list[list[float]], bool], amount: float, slippage: float
) -> None:
    levels, buying = book
    model = FillModel(0.001, slippage, False, False, 1, 1)
    walked = take([list(level) for level in levels], amount, buying=buying, limit=None)
    filled = market_fill(levels, amount, model, "long", opening=buying)
    assert filled.amount == pytest.approx(walked.amount)
    factor = 1 + slippage if buying else 1 - slippage
    assert filled.average == pytest.approx(walked.average * factor, rel=1e-9)


@given(prices, amounts, prices, st.floats(min_value=0, max_value=0.01))
def test_a_market_entry_equals_the_backtests_when_the_touch_is_the_next_open(
    open_: float, amount: float, close: float, slippage: float
) -> None:
    model = FillModel(0.001, slippage, False, False, 1, 1)
    candles = {k: np.array([close, open_]) for k in ("open", "high", "low", "close")}
    outcome = entry_fill(model, candles, 0, "long")
    assert outcome[0] == "filled"
    paper = market_fill([[open_, amount * 2]], amount, model, "long", opening=True)
    assert paper.average == pytest.approx(outcome[2], rel=1e-12)
    assert model.fee_on(paper.average, amount) == pytest.approx(paper.cost * model.fee)


@given(prices, amounts, st.floats(min_value=0.5, max_value=0.9999))
def test_a_resting_limit_fills_at_its_own_price_like_the_backtests(
    limit: float, amount: float, fall: float
) -> None:
    """The backtest: a candle opening above a long's limit and trading below it fills it
    at the limit. The book: an ask below the resting limit fills it at the limit."""
    model = FillModel(0.001, 0.0005, True, True, 1, 1)
    through = limit * fall
    candles = {
        "open": np.array([limit, limit * 1.01]),
        "high": np.array([limit, limit * 1.02]),
        "low": np.array([limit, through]),
        "close": np.array([limit, limit]),
    }
    outcome = entry_fill(model, candles, 0, "long")
    paper = limit_resting([[through, amount]], amount, limit, buying=True)
    assert outcome == ("filled", 1, limit)
    assert paper.average == pytest.approx(limit) and paper.amount == pytest.approx(amount)
