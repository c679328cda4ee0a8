"""Funding, mark prices and exchange rules on hand-made candles where every number can be
worked out: one pair, a market entry at the open after the signal (at 100), 10× leverage,
a margin of 100 (10% of 1000): 10 units, worth 1000."""

from __future__ import annotations

import pandas as pd
import pytest

from kinetic_rules.backtest.runner import simulate
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.engine.futures import MarketExtras
from kinetic_rules.engine.model import LIQUIDATION, STOP_LOSS, BacktestResult, Trade
from kinetic_rules.lang.checker import check
from kinetic_rules.market_rules import MarketRules
from kinetic_rules.spec.loader import load_text

Row = tuple[float, float, float, float, float]
FLAT: Row = (100.0, 101.0, 99.0, 100.0, 0.0)
SIGNAL: Row = (100.0, 101.0, 99.0, 100.0, 200.0)
LONG = "entry:\n  long:\n    go: volume > 100\n"
SHORT = "entry:\n  short:\n    go: volume > 100\n"
START = pd.Timestamp("2024-01-01", tz="UTC")


def frame(rows: list[Row]) -> pd.DataFrame:
    index = pd.date_range(START, periods=len(rows), freq="5min", tz="UTC", name="date")
    return pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], index=index)


def run(
    body: str,
    rows: list[Row],
    *,
    mark: list[Row] | None = None,
    funding: dict[str, float] | None = None,
    rules: MarketRules | None = None,
    orders: str = "{entry: market, exit: market}",
) -> BacktestResult:
    text = (
        "metadata: {name: t}\ntimeframe: 5m\nmarket: {type: futures, pairs: [X/USDT]}\n"
        f"orders: {orders}\nsizing: {{stake: 10%}}\nleverage: 10\n"
        "backtest: {starting_balance: 1000, fee: 0, slippage: 0}\n" + body
    )
    plan = build_plan(check(load_text(text, "t.yaml")))
    times = pd.DatetimeIndex([pd.Timestamp(t, tz="UTC") for t in (funding or {})])
    rates = pd.DataFrame({"rate": list((funding or {}).values())}, index=times)
    extras = MarketExtras(
        funding=lambda pair: rates if funding else None,
        mark=lambda pair, tf: frame(mark) if mark else None,
        rules=None if rules is None else {"X/USDT": rules},
        exchange="binance",
    )
    candles = frame(rows)
    return simulate(plan, lambda pair, tf: candles, ["X/USDT"], extras=extras)


def only(result: BacktestResult) -> Trade:
    (trade,) = result.trades
    return trade


FUNDED = {"2024-01-01 00:10": 0.001, "2024-01-01 00:15": 0.001, "2024-01-01 00:20": -0.0005}


def test_a_long_pays_funding_at_each_funding_time_it_is_held() -> None:
    # entry at the open of 00:10, just after that funding time: nothing paid then;
    # 00:15: 10 units × 100 × 0.1% = 1.00 paid; 00:20: 10 × 100 × −0.05% = 0.50 received
    trade = only(run(LONG, [FLAT, SIGNAL, FLAT, FLAT, FLAT], funding=FUNDED))
    assert trade.entry_time == START + pd.Timedelta("10min")
    assert trade.funding == pytest.approx(0.5)
    assert trade.profit == pytest.approx(-0.5)  # flat prices, no fees: only the funding


def test_a_short_receives_what_a_long_pays() -> None:
    trade = only(run(SHORT, [FLAT, SIGNAL, FLAT, FLAT, FLAT], funding=FUNDED))
    assert trade.funding == pytest.approx(-0.5)
    assert trade.profit == pytest.approx(0.5)


def test_funding_is_paid_on_the_mark_price_and_on_what_is_still_held() -> None:
    mark = [FLAT, FLAT, FLAT, (102.0, 103.0, 101.0, 102.0, 0.0), FLAT]
    take = "take_profit:\n  half: {when: bars_held >= 0, close: 50%}\n"
    # the take-profit decided at the close of 00:10 fills at the open of 00:15, just
    # after the funding time: 00:15 is paid on all 10 units at the mark's 102 (1.02),
    # 00:20 on the 5 left at 100 (−0.25)
    trade = only(run(LONG + take, [FLAT, SIGNAL, FLAT, FLAT, FLAT], mark=mark, funding=FUNDED))
    assert [f.amount for f in trade.fills] == [10.0, 5.0, 5.0]
    assert trade.funding == pytest.approx(1.02 - 0.25)


def test_the_mark_price_not_the_traded_price_liquidates() -> None:
    # 10× long from 100: liquidation at 100 × 0.9 / 0.995 = 90.45
    wick: Row = (100.0, 101.0, 90.0, 100.0, 0.0)  # the traded price wicks through it
    calm: Row = (100.0, 101.0, 92.0, 100.0, 0.0)  # the mark price does not
    rows = [FLAT, SIGNAL, FLAT, wick, FLAT]
    assert only(run(LONG, rows)).exit_reason == LIQUIDATION
    spared = only(run(LONG, rows, mark=[FLAT, FLAT, FLAT, calm, FLAT]))
    assert spared.exit_reason != LIQUIDATION
    # and the other way round: the mark reaches it while the traded price does not
    hit = only(run(LONG, [FLAT, SIGNAL, FLAT, calm, FLAT], mark=[FLAT, FLAT, FLAT, wick, FLAT]))
    assert hit.exit_reason == LIQUIDATION
    assert hit.exit_price == pytest.approx(100 * 0.9 / 0.995)


STOP = "stoploss:\n  initial: entry_price - side * 5\n"


def test_stops_trigger_on_the_price_the_strategy_names() -> None:
    dip: Row = (100.0, 101.0, 94.0, 100.0, 0.0)  # the traded price reaches the stop at 95
    calm: Row = (100.0, 101.0, 96.0, 100.0, 0.0)  # the mark price does not
    rows = [FLAT, SIGNAL, FLAT, dip, FLAT]
    mark = [FLAT, FLAT, FLAT, calm, FLAT]
    on_mark = only(run(LONG + STOP, rows, mark=mark))
    assert on_mark.exit_reason != STOP_LOSS
    contract = "{entry: market, exit: market, stop_trigger: contract}"
    on_trades = only(run(LONG + STOP, rows, mark=mark, orders=contract))
    assert (on_trades.exit_reason, on_trades.exit_price) == (STOP_LOSS, 95.0)
    # without mark candles a mark-triggered stop watches the traded price
    assert only(run(LONG + STOP, rows)).exit_reason == STOP_LOSS


ODD_STOP = "stoploss:\n  initial: entry_price - side * 3.3333\n"


def test_stops_are_rounded_to_the_tick_towards_the_price() -> None:
    rules = MarketRules(tick_size=0.01, amount_step=0.001)
    long = only(run(LONG + ODD_STOP, [FLAT, SIGNAL, FLAT, FLAT], rules=rules))
    short = only(run(SHORT + ODD_STOP, [FLAT, SIGNAL, FLAT, FLAT], rules=rules))
    assert long.initial_stop == 96.67  # 96.6667 up: a tighter stop for a long
    assert short.initial_stop == 103.33  # 103.3333 down: a tighter stop for a short
    unrounded = only(run(LONG + ODD_STOP, [FLAT, SIGNAL, FLAT, FLAT]))
    assert unrounded.initial_stop == pytest.approx(96.6667)


def test_amounts_are_truncated_to_the_step_and_the_stake_follows() -> None:
    rules = MarketRules(amount_step=3.0)  # 10 units asked: 9 sent
    trade = only(run(LONG, [FLAT, SIGNAL, FLAT, FLAT], rules=rules))
    assert trade.amount == 9.0
    assert trade.stake == pytest.approx(90.0)  # 9 × 100 / 10×
    assert trade.margin == pytest.approx(90.0)


def test_an_entry_worth_less_than_the_minimum_is_not_sent() -> None:
    rules = MarketRules(min_notional=1001.0)  # 10 units × 100 = 1000
    result = run(LONG, [FLAT, SIGNAL, FLAT, FLAT], rules=rules)
    assert result.trades == []
    assert any("skipped: 1 entries" in s for s in result.assumptions.fill_model)
