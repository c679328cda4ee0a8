"""The book against the exchange's futures positions: what a start reports."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.live.broker import ExchangePosition
from kinetic_rules.live.reconcile import liquidation_gap, position_problems
from kinetic_rules.margin import liquidation_price


def held(pair: str, amount: float, leverage: float = 5, mode: str = "isolated") -> ExchangePosition:
    side = "long" if amount > 0 else "short"
    return ExchangePosition(pair, side, abs(amount), 100.0, leverage, mode, 81.0, 0.01)


def test_a_book_that_matches_the_exchange_reports_nothing() -> None:
    positions = [held("BTC/USDT", 0.5), held("ETH/USDT", -2.0)]
    expected = {"BTC/USDT": 0.5, "ETH/USDT": -2.0}
    assert (
        position_problems(expected, positions, {"BTC/USDT": 5, "ETH/USDT": 4.6}, "isolated") == []
    )


def test_each_difference_is_said_once_with_the_pair() -> None:
    positions = [held("ETH/USDT", -2.0), held("SOL/USDT", 3.0, leverage=10, mode="cross")]
    expected = {"BTC/USDT": 0.5, "SOL/USDT": 1.0}
    said = position_problems(expected, positions, {"SOL/USDT": 3}, "isolated")
    assert len(said) == 5
    assert "BTC/USDT" in said[2] and "closed outside this bot" in said[2]
    assert "ETH/USDT" in said[3] and "short position of 2" in said[3] and "did not open" in said[3]
    assert "SOL/USDT" in said[4] and "+1" in said[4] and "+3" in said[4]
    assert "10x" in said[0] and "3x" in said[0] and "cross margin" in said[1]


@given(st.floats(1.0, 125.0), st.floats(0.0, 0.05), st.sampled_from(["long", "short"]))
def test_the_models_own_liquidation_price_is_never_a_gap(
    leverage: float, maintenance: float, side: str
) -> None:
    sign = 1.0 if side == "long" else -1.0
    price = liquidation_price(30_000.0, leverage, maintenance, sign)
    position = ExchangePosition("BTC/USDT", side, 1.0, 30_000.0, leverage, "isolated",  # type: ignore[arg-type]
                                price or None, 0.1)  # fmt: skip
    assert liquidation_gap(price, position, maintenance) is None


def test_a_gap_of_more_than_a_tick_is_a_warning_with_both_prices() -> None:
    position = ExchangePosition("BTC/USDT", "long", 1.0, 30_000.0, 10, "isolated", 27_300.0, 0.1)
    model = liquidation_price(30_000.0, 10, 0.005, 1.0)
    warning = liquidation_gap(model, position, 0.005)
    assert warning is not None and "27300" in warning and f"{model:g}" in warning
    assert liquidation_gap(27_300.05, position, 0.005) is None  # within a tick
