"""The runtime's tally of open trades and closed profit, kept up as trades open and close,
equals a walk over every trade at each look."""

from __future__ import annotations

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.engine.model import Fill, Trade
from kinetic_rules.live.tally import TradeTally

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def trade(number: int, exit_price: float) -> Trade:
    entered = T0 + pd.Timedelta(minutes=number)
    made = Trade(
        id=number, pair="BTC/USDT", side="long", regime=None, signal_time=entered,
        entry_time=entered, entry_price=100.0, amount=1.0, stake=100.0, leverage=1.0,
        initial_stop=90.0,
    )  # fmt: skip
    made.fills.append(Fill(entered, 100.0, 1.0, 0.1, "entry"))
    made.exit_price = exit_price  # closed by `close` below
    return made


def close(made: Trade) -> None:
    assert made.exit_price is not None
    made.fills.append(Fill(made.entry_time, made.exit_price, 1.0, 0.1, "exit"))
    made.exit_time = made.entry_time + pd.Timedelta(minutes=5)


# Each look: how many trades open before it, and which open ones close (by position).
looks = st.lists(
    st.tuples(st.integers(0, 4), st.lists(st.integers(0, 20), max_size=4)), max_size=30
)


@given(looks, st.lists(st.floats(50.0, 150.0), min_size=120, max_size=120))
def test_the_tally_equals_a_walk_over_every_trade(
    plan: list[tuple[int, list[int]]], prices: list[float]
) -> None:
    trades: list[Trade] = []
    tally = TradeTally()
    for opened, closing in plan:
        trades += [trade(len(trades) + i, prices[len(trades) + i]) for i in range(opened)]
        still = [t for t in trades if t.exit_time is None]
        for at in closing:
            if still and still[at % len(still)].exit_time is None:
                close(still[at % len(still)])
        walked = sum(t.profit for t in trades if t.exit_time is not None)
        assert tally.open_trades(trades) == [t for t in trades if t.exit_time is None]
        assert abs(tally.realized - walked) <= 1e-9 * max(1.0, abs(walked))
