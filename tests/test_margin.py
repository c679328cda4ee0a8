"""The isolated-margin formulas: the liquidation price is where the margin runs out."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.margin import beyond_liquidation, liquidation_distance, liquidation_price

entries = st.floats(1e-4, 1e6)
leverages = st.floats(1.0, 125.0)
rates = st.floats(0.0, 0.05)
signs = st.sampled_from([1.0, -1.0])


@given(entries, leverages, rates, signs)
def test_at_the_liquidation_price_the_margin_balance_is_the_maintenance_margin(
    entry: float, leverage: float, rate: float, sign: float
) -> None:
    price = liquidation_price(entry, leverage, rate, sign)
    if price == 0.0:  # a long the price can never liquidate
        assert sign > 0 and leverage * (1 - rate) <= 1 + 1e-12
        return
    amount = 1000.0 * leverage / entry  # a margin of 1000
    balance = 1000.0 + sign * amount * (price - entry)
    assert balance == pytest.approx(rate * amount * price, rel=1e-9, abs=1e-6)


@given(entries, leverages, rates, signs)
def test_the_distance_is_how_far_the_price_moves_against_the_trade(
    entry: float, leverage: float, rate: float, sign: float
) -> None:
    price = liquidation_price(entry, leverage, rate, sign)
    distance = liquidation_distance(leverage, rate, sign)
    expected = max(0.0, entry * (1 - sign * distance))
    assert price == pytest.approx(expected, rel=1e-12, abs=entry * 1e-12)


@given(leverages, leverages, rates, signs)
def test_more_leverage_brings_the_liquidation_nearer(
    a: float, b: float, rate: float, sign: float
) -> None:
    low, high = sorted((a, b))
    assert liquidation_distance(high, rate, sign) <= liquidation_distance(low, rate, sign)


def test_known_values() -> None:
    # 10× long at 0.5%: 100 × 0.9 / 0.995; the brief's rule of thumb 100 × (1 − 0.1 + 0.005)
    # is within 0.05% of it.
    assert liquidation_price(100.0, 10.0, 0.005, 1.0) == pytest.approx(90.452261306)
    assert liquidation_price(100.0, 10.0, 0.005, -1.0) == pytest.approx(109.452736318)
    assert liquidation_price(100.0, 1.0, 0.005, 1.0) == 0.0  # 1× long: never
    assert liquidation_price(100.0, 1.0, 0.005, -1.0) == pytest.approx(199.004975124)
    # 20× short at 0.5%: liquidated 4.48% above the entry — a 3% stop comes first
    assert liquidation_distance(20.0, 0.005, -1.0) == pytest.approx(0.0447761194)


def test_a_stop_at_or_past_the_liquidation_price_is_beyond_it() -> None:
    assert beyond_liquidation(90.0, 90.45, 1.0) and not beyond_liquidation(91.0, 90.45, 1.0)
    assert beyond_liquidation(110.0, 109.45, -1.0) and not beyond_liquidation(109.0, 109.45, -1.0)
    assert beyond_liquidation(90.45, 90.45, 1.0)
    assert beyond_liquidation(-math.inf, 90.45, 1.0) and beyond_liquidation(math.inf, 109.0, -1.0)
