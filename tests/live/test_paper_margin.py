"""Properties of the paper futures margin account, on random sequences of orders and marks."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.live.broker import OrderRequest, Refused
from kinetic_rules.live.paper_account import PaperOrder
from kinetic_rules.live.paper_fills import Taken
from kinetic_rules.live.paper_margin import MarginAccount

PAIR = "BTC/USDT"
WHEN = pd.Timestamp("2024-03-01", tz="UTC")
DEPOSIT = 10_000.0

steps = st.lists(
    st.tuples(
        st.sampled_from(["open", "reduce", "mark", "fund"]),
        st.booleans(),  # buying
        st.floats(0.001, 0.5),  # amount
        st.floats(50.0, 150.0),  # price or mark
        st.floats(-0.01, 0.01),  # funding rate
    ),
    max_size=25,
)


def paper_order(n: int, buying: bool, opening: bool, amount: float) -> PaperOrder:
    side = "long" if buying == opening else "short"
    request = OrderRequest(f"o{n}", PAIR, side, opening, "market", amount, leverage=5)
    return PaperOrder(request, f"paper-{n}", "BTC", "USDT", buying, None, None, WHEN)


@settings(max_examples=200, deadline=None)
@given(steps, st.sampled_from(["isolated", "cross"]))
def test_reduce_only_never_grows_a_position_and_the_books_balance(
    sequence: list[tuple[str, bool, float, float, float]], mode: str
) -> None:
    account = MarginAccount(DEPOSIT, 0.0004, 0.005, mode)
    account.leverage[PAIR] = 5
    realized_and_fees = funding = 0.0
    for n, (what, buying, amount, price, rate) in enumerate(sequence):
        before = account.position(PAIR).amount
        wallet = account.wallet
        if what == "mark":
            account.marks[PAIR] = price
            due = account.liquidation_due(PAIR)
            if due is not None:
                account.liquidate(PAIR, due, WHEN)
                realized_and_fees += account.wallet - wallet
            continue
        if what == "fund":
            account.marks.setdefault(PAIR, price)
            charge = account.fund(PAIR, n, rate, account.marks[PAIR])
            funding += charge.paid if charge else 0.0
            continue
        order = paper_order(n, buying, what == "open", amount)
        try:
            account.reserve(order, price)
        except Refused:
            assert account.position(PAIR).amount == before
            continue
        account.orders.append(order)
        entry = account.position(PAIR).entry
        fill = account.reducible(order) if what == "reduce" else amount
        account.book(order, Taken(fill, fill * price), WHEN)
        realized_and_fees += account.wallet - wallet
        after = account.position(PAIR).amount
        if what == "reduce":  # never more than it held, never to the other side
            assert abs(after) <= abs(before) + 1e-12 and after * before >= -1e-18
            sign = 1.0 if before > 0 else -1.0
            realized = sign * fill * (price - entry) - fill * price * 0.0004
            assert account.wallet - wallet == pytest.approx(realized, abs=1e-9)
        assert account.held >= -1e-9
    account.marks.setdefault(PAIR, account.position(PAIR).entry)
    # the wallet moves only by what was realized, fees, funding and liquidations
    assert account.wallet == pytest.approx(DEPOSIT + realized_and_fees - funding, rel=1e-12)
    assert account.equity() == pytest.approx(account.wallet + account.unrealized(PAIR))
