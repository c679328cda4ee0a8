"""The exchange's rounding, shared by backtests and the live executor: amounts never above
what was asked, stops never looser, orders below the minimum not sent."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.market_rules import (
    DECIMAL_PLACES,
    SIGNIFICANT_DIGITS,
    TICK_SIZE,
    MarketRules,
    round_stop,
    round_stops,
    rules_from_ccxt,
    tradable,
    truncate_amount,
)

STEPS = st.sampled_from([1e-5, 1e-4, 0.001, 0.01, 0.1, 1.0, 5.0])
AMOUNTS = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)


def on_grid(value: float, step: float) -> bool:
    count = value / step
    return abs(count - round(count)) < 1e-6 + 1e-12 * abs(count)


@given(AMOUNTS, STEPS)
def test_a_truncated_amount_is_on_the_step_and_within_one_step_below(
    amount: float, step: float
) -> None:
    rounded = truncate_amount(amount, step)
    assert on_grid(rounded, step)
    assert rounded <= amount * (1 + 1e-9)
    assert amount - rounded < step * (1 + 1e-6)


@given(st.floats(min_value=0.01, max_value=1e6, allow_nan=False), STEPS, st.sampled_from([1, -1]))
def test_a_stop_rounds_towards_the_price_it_protects(price: float, tick: float, sign: int) -> None:
    rounded = round_stop(price, tick, sign)
    assert on_grid(rounded, tick)
    if sign > 0:  # a long's stop sells below the price: rounding up tightens it
        assert price * (1 - 1e-9) <= rounded < price + tick * (1 + 1e-6)
    else:
        assert price - tick * (1 + 1e-6) < rounded <= price * (1 + 1e-9)


@given(st.lists(st.floats(min_value=0.01, max_value=1e6), min_size=1, max_size=20), STEPS)
def test_rounding_many_stops_at_once_equals_rounding_each(levels: list[float], tick: float) -> None:
    for sign in (1.0, -1.0):
        many = round_stops(np.array([*levels, -np.inf, np.inf]), tick, sign)
        assert list(many[:-2]) == pytest.approx([round_stop(v, tick, sign) for v in levels])
        assert math.isinf(many[-2]) and math.isinf(many[-1])


def test_values_already_on_the_grid_stay_put_despite_binary_noise() -> None:
    assert truncate_amount(3.814, 0.001) == 3.814
    assert truncate_amount(0.1 + 0.2, 0.1) == pytest.approx(0.3)
    assert round_stop(51981.02, 0.01, 1) == 51981.02
    assert round_stop(51981.02, 0.01, -1) == 51981.02


def test_orders_below_the_minimum_are_not_sent() -> None:
    btc = MarketRules(tick_size=0.01, amount_step=0.00001, min_notional=5, min_amount=0.00001)
    assert tradable(btc, 0.000123456, 50_000.0) == pytest.approx(0.00012)
    assert tradable(btc, 0.00009, 50_000.0) == 0.0  # 4.5 USDT: below the 5 USDT minimum
    assert tradable(btc, 0.000004) == 0.0  # below one step
    assert tradable(MarketRules(), 0.123) == 0.123  # no rules, no rounding


def market(precision: dict[str, Any]) -> dict[str, Any]:
    limits = {"amount": {"min": 0.0001}, "cost": {"min": 5.0}}
    return {"symbol": "ETH/USDT", "precision": precision, "limits": limits}


def test_rules_are_read_from_ccxt_markets_in_either_precision_mode() -> None:
    by_tick = rules_from_ccxt(market({"price": 0.01, "amount": 0.0001}), TICK_SIZE)
    by_places = rules_from_ccxt(market({"price": 2, "amount": 4}), DECIMAL_PLACES)
    assert by_tick == MarketRules(0.01, 0.0001, 5.0, 0.0001)
    assert by_places is not None
    assert by_places.amount_step == pytest.approx(0.0001)
    assert by_places.tick_size == pytest.approx(0.01)
    assert rules_from_ccxt(market({"price": 5, "amount": 5}), SIGNIFICANT_DIGITS) is None
