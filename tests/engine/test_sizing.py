"""Kelly sizing: seed 000 properties 10–13."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.engine.sizing import kelly_cap, kelly_fraction, kelly_stake, win_rate
from kinetic_rules.spec.models import Kelly

KELLY = Kelly(lookback=20, min_trades=10, reward_risk=2.0, default=0.01, clamp=(0.005, 0.05))
profits = st.lists(st.floats(-100, 100, allow_nan=False), max_size=60)


@given(st.lists(st.floats(-100, 100, allow_nan=False), max_size=9))
def test_fewer_than_ten_closed_trades_stake_exactly_one_percent(history: list[float]) -> None:
    assert kelly_stake(KELLY, history) == 0.01


@given(profits)
def test_win_rate_is_winners_over_trades(history: list[float]) -> None:
    expected = sum(1 for p in history if p > 0) / len(history) if history else 0.0
    assert win_rate(history) == expected


@given(st.floats(0, 1), st.floats(0.1, 10))
def test_kelly_fraction_formula(rate: float, reward_risk: float) -> None:
    assert kelly_fraction(rate, reward_risk) == rate - (1 - rate) / reward_risk


@given(profits)
def test_stake_is_clamped_and_uses_the_last_twenty_trades(history: list[float]) -> None:
    stake = kelly_stake(KELLY, history)
    assert 0.005 <= stake <= 0.05
    if len(history) >= 10:
        recent = history[-20:]
        raw = kelly_fraction(win_rate(recent), 2.0)
        assert stake == min(max(raw, 0.005), 0.05)


def test_known_values() -> None:
    assert kelly_stake(KELLY, [1.0] * 10) == 0.05  # all winners: capped at 5%
    assert kelly_stake(KELLY, [-1.0] * 10) == 0.005  # all losers: floor 0.5%
    # 8 wins of 20: 0.4 − 0.6/2 = 0.1 → capped; 6 of 20: 0.3 − 0.35 < 0 → floor
    assert kelly_stake(KELLY, [1.0] * 8 + [-1.0] * 12) == 0.05
    assert kelly_stake(KELLY, [1.0] * 6 + [-1.0] * 14) == 0.005


CAP = Kelly(lookback=20, min_trades=10, reward_risk=2.0)
stakes = st.floats(0, 1, allow_nan=False)


@given(stakes, profits)
def test_kelly_only_ever_lowers_the_stake_rule(stake: float, history: list[float]) -> None:
    assert kelly_cap(CAP, stake, history) <= stake


@given(stakes, profits)
def test_the_cap_is_full_kelly_once_enough_trades_closed_and_kelly_is_positive(
    stake: float, history: list[float]
) -> None:
    capped = kelly_cap(CAP, stake, history)
    full = kelly_fraction(win_rate(history[-20:]), 2.0)
    if len(history) < 10 or full <= 0:
        assert capped == stake  # too little history, or a losing one: the rule stands alone
    else:
        assert capped == min(stake, full)


def test_known_caps() -> None:
    assert kelly_cap(CAP, 0.2, [1.0] * 9) == 0.2  # nine trades: not yet
    # 8 wins of 20: 0.4 − 0.6 / 2 = 0.1 caps a 20% stake, leaves a 5% one
    assert kelly_cap(CAP, 0.2, [1.0] * 8 + [-1.0] * 12) == pytest.approx(0.1)
    assert kelly_cap(CAP, 0.05, [1.0] * 8 + [-1.0] * 12) == 0.05
    assert kelly_cap(CAP, 0.2, [-1.0] * 20) == 0.2  # full Kelly ≤ 0: no cap (seed 004)
