"""Reading a liquidation from the exchange's records: the force orders that closed a
position (ccxt's liquidation structures) and what the account lost to them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.live.liquidations import account_loss, force_orders

SYMBOL = "BTC/USDT:USDT"
ENTRY = 1_709_251_200_000  # ms: when the trade was entered


def row(order_id: int, time: int, executed: float, average: float, **more: Any) -> dict[str, Any]:
    """A liquidation as ccxt's binanceusdm parses a force order."""
    info = {"orderId": order_id, "symbol": "BTCUSDT", "status": "FILLED",
            "clientOrderId": f"autoclose-{time}", "avgPrice": str(average),
            "executedQty": str(executed), "updateTime": time}  # fmt: skip
    return {"info": info, "symbol": SYMBOL, "contracts": executed, "contractSize": None,
            "price": average, "side": "sell", "baseValue": None,
            "quoteValue": executed * average, "timestamp": time, **more}  # fmt: skip


def test_one_force_order_is_the_liquidation() -> None:
    found = force_orders([row(11, ENTRY + 5_000, 0.01, 62_091.78)], SYMBOL, ENTRY)
    assert found is not None
    assert (found.order_ids, found.time, found.price, found.amount) == (
        ("11",),
        ENTRY + 5_000,
        62_091.78,
        0.01,
    )


def test_several_partly_filled_force_orders_end_the_trade_at_their_average() -> None:
    rows = [
        row(11, ENTRY + 5_000, 0.004, 100.0),  # the position taken in steps
        row(12, ENTRY + 6_000, 0.0, 0.0, info={"orderId": 12, "status": "EXPIRED"}),
        row(13, ENTRY + 7_000, 0.006, 90.0, info={"orderId": 13, "status": "PARTIALLY_FILLED"}),
    ]
    found = force_orders(rows, SYMBOL, ENTRY)
    assert found is not None
    assert found.order_ids == ("11", "13")  # the one that filled nothing is not counted
    assert found.amount == pytest.approx(0.01)
    assert found.price == pytest.approx((0.004 * 100 + 0.006 * 90) / 0.01)
    assert found.time == ENTRY + 7_000


def test_force_orders_before_the_trade_or_on_another_symbol_are_not_its_own() -> None:
    rows = [
        row(10, ENTRY - 1, 0.5, 120.0),  # an earlier position's
        {**row(14, ENTRY + 9_000, 0.5, 3_000.0), "symbol": "ETH/USDT:USDT"},
    ]
    assert force_orders(rows, SYMBOL, ENTRY) is None
    assert force_orders([*rows, row(15, ENTRY, 0.01, 99.5)], SYMBOL, ENTRY) is not None


def test_fields_an_exchange_adds_or_drops_do_not_break_the_reading() -> None:
    rows = [
        {**row(11, ENTRY + 5_000, 0.01, 0.0), "price": None, "quoteValue": 1_000.0,
         "somethingNew": {"nested": [1, 2]}},  # no average price: the quote value tells it
        {**row(12, ENTRY + 6_000, 0.01, 100.0), "contracts": "n/a"},  # unreadable: skipped
        {**row(13, ENTRY + 6_000, 0.01, 100.0), "timestamp": None},  # no time: skipped
        {"symbol": SYMBOL},  # nothing at all
        {**row(16, ENTRY + 8_000, 2.0, 50.0), "contractSize": 0.001},  # in contracts
    ]  # fmt: skip
    found = force_orders(rows, SYMBOL, ENTRY)
    assert found is not None
    assert found.order_ids == ("11", "16")
    assert found.amount == pytest.approx(0.012)
    assert found.price == pytest.approx((1_000.0 + 0.002 * 50.0) / 0.012)


def fill(realized: str | None, fee: float, currency: str = "USDT") -> dict[str, Any]:
    info = {} if realized is None else {"realizedPnl": realized}
    return {"info": info, "fee": {"cost": fee, "currency": currency}}


def test_the_account_loses_the_realized_loss_the_fees_and_the_clearance_fee() -> None:
    fills = [fill("-28.10", 0.25), fill("-1.90", 0.05), fill("0", 0.01, "BNB")]
    assert account_loss(fills, [-1.2], "USDT") == pytest.approx(28.10 + 1.90 + 0.30 + 1.2)
    assert account_loss([fill(None, 0.3)], [-1.2], "USDT") is None  # nothing to go by
    assert account_loss([], [], "USDT") is None


@given(
    st.lists(
        st.tuples(
            st.integers(-10_000, 10_000),
            st.floats(0.0, 5.0, allow_nan=False),
            st.floats(1.0, 1e5, allow_nan=False),
        ),
        max_size=8,
    ),
    st.integers(-10_000, 10_000),
)
def test_the_liquidation_is_every_filled_force_order_since_the_time_asked(
    orders: list[tuple[int, float, float]], since: int
) -> None:
    rows = [row(i, ENTRY + t, qty, price) for i, (t, qty, price) in enumerate(orders, 1)]
    found = force_orders(rows, SYMBOL, ENTRY + since)
    counted = [(t, qty, price) for t, qty, price in orders if t >= since and qty > 0]
    if not counted:
        assert found is None
        return
    assert found is not None
    assert found.amount == pytest.approx(sum(qty for _, qty, _ in counted))
    assert found.time == ENTRY + max(t for t, _, _ in counted)
    low, high = min(p for *_, p in counted), max(p for *_, p in counted)
    assert low * (1 - 1e-9) <= found.price <= high * (1 + 1e-9)
