"""Rules that read the portfolio, on small made-up markets where every number can be worked
out by hand: entry conditions, protections, and a portfolio-wide close-all, in a backtest
and in the live runtime replaying the same candles."""

from __future__ import annotations

import pandas as pd
import pytest

from kinetic_rules.backtest.runner import simulate
from kinetic_rules.compile.plan import Plan, build_plan
from kinetic_rules.engine.model import Trade
from kinetic_rules.lang.checker import check
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.source import ReplaySource
from kinetic_rules.spec.loader import load_text

STEP = pd.Timedelta("5min")
START = pd.Timestamp("2024-01-01", tz="UTC")


def frame(closes: list[float], volumes: list[float], start: pd.Timestamp = START) -> pd.DataFrame:
    index = pd.date_range(start, periods=len(closes), freq="5min", tz="UTC", name="date")
    return pd.DataFrame(
        {"open": closes, "high": closes, "low": closes, "close": closes, "volume": volumes},
        index=index,
    )


def plan_of(body: str) -> Plan:
    text = f"""
metadata: {{name: portfolio rules}}
timeframe: 5m
orders: {{entry: market, exit: market}}
backtest: {{fee: 0, slippage: 0}}
portfolio: {{max_open_trades: 10}}
{body}
"""
    return build_plan(check(load_text(text, "t.yaml")))


def both_ways(plan: Plan, frames: dict[str, pd.DataFrame]) -> list[Trade]:
    """The backtest's trades, after checking that a replay through the live runtime agrees."""
    pairs = sorted(frames)
    backtest = simulate(plan, lambda pair, tf: frames[pair], pairs).trades
    source = ReplaySource(plan, lambda pair, tf: frames[pair], pairs)
    runtime = Runtime(plan, source)
    for step in source.steps():
        runtime.step(step)
    runtime.finish(len(source.timeline) - 1)
    replayed = runtime.trades()
    assert [_key(t) for t in replayed] == [_key(t) for t in backtest]
    return backtest


def _key(trade: Trade) -> tuple[object, ...]:
    fills = tuple((f.time, f.price, f.amount, f.reason) for f in trade.fills)
    return (trade.pair, trade.entry_time, trade.stake, trade.exit_time, trade.exit_reason, fills)


def test_an_entry_condition_on_open_trades_counts_the_slots_taken_at_the_same_close() -> None:
    plan = plan_of("""
sizing: {stake: 10%}
entry:
  long:
    go: volume > 100
    room: open_trades < 2
  priority: volume
""")
    frames = {p: frame([100.0] * 6, [0, 100 + i, 0, 0, 0, 0]) for i, p in enumerate("ABCD")}
    trades = both_ways(plan, {f"{p}/USDT": f for p, f in frames.items()})
    assert sorted(t.pair for t in trades) == ["C/USDT", "D/USDT"]  # the two loudest


def test_exposure_caps_what_is_staked_in_total() -> None:
    plan = plan_of("""
sizing: {stake: 30%}
entry:
  long:
    go: volume > 100
    room: exposure + 30% <= 70%
  priority: volume
""")
    frames = {
        f"{p}/USDT": frame([100.0] * 6, [0, 100 + i, 0, 0, 0, 0]) for i, p in enumerate("ABCD")
    }
    trades = both_ways(plan, frames)
    assert len(trades) == 2  # 30% + 30% fits under 70%; a third would not
    assert all(t.stake == pytest.approx(3_000.0) for t in trades)


LOSS_STOP = """
sizing: {stake: 40%}
protections:
  loss:
    active: open_profit_ratio < -2%
    close_all: true
    block_entries: true
entry:
  long:
    go: volume > 100
"""


def test_a_portfolio_close_all_fires_at_the_first_close_where_it_holds() -> None:
    # Two longs of 40% each from 100: the open loss is 0.8 × the fall, so it passes 2% of
    # equity when the price falls below 97.5 — at the close of candle 7 (97).
    closes = [100.0, 100, 100, 100, 100, 99, 98, 97, 96, 95, 94, 93]
    volumes = [0, 200, 0, 0, 0, 0, 0, 200, 200, 0, 0, 0]
    frames = {"A/USDT": frame(closes, volumes), "B/USDT": frame(closes, volumes)}
    trades = both_ways(plan_of(LOSS_STOP), frames)
    first = [t for t in trades if t.entry_time == START + 2 * STEP]
    assert len(first) == 2
    for trade in first:
        assert trade.exit_reason == "protection:loss"
        assert trade.exit_time == START + 8 * STEP and trade.exit_price == 96.0  # next open
    # The signal at candle 7 was blocked (the loss still stood at its close); the one at
    # candle 8 was not: both exits were decided, the slots free, nothing open is losing.
    later = [t for t in trades if t not in first]
    assert [t.signal_time for t in later] == [START + 8 * STEP] * 2


def test_a_portfolio_close_all_only_closes_trades_on_pairs_where_it_holds() -> None:
    body = LOSS_STOP.replace("open_profit_ratio < -2%", "open_profit_ratio < -1% and close < 99")
    falling = frame([100.0, 100, 100, 100, 98, 97, 97, 97], [0, 200, 0, 0, 0, 0, 0, 0])
    steady = frame([100.0, 100, 100, 100, 100, 100, 100, 100], [0, 200, 0, 0, 0, 0, 0, 0])
    trades = both_ways(plan_of(body), {"A/USDT": falling, "B/USDT": steady})
    by_pair = {t.pair: t for t in trades}
    assert by_pair["A/USDT"].exit_reason == "protection:loss"
    # 40% of equity in A: 0.8% lost at 98 (not yet), 1.2% at 97 (candle 5): out at 6's open.
    assert by_pair["A/USDT"].exit_time == START + 6 * STEP
    assert by_pair["B/USDT"].exit_reason == "end_of_data"


def test_it_fires_again_for_a_trade_opened_after_it() -> None:
    # 40% at 100 loses 2.4% of equity at 94; the next trade, 40% of what is left at 94,
    # loses 2.55% at 88.
    closes = [100.0, 100, 100, 100, 94, 94, 94, 94, 88, 88, 88]
    volumes = [0, 200, 0, 0, 0, 200, 0, 0, 0, 0, 0]
    trades = both_ways(plan_of(LOSS_STOP), {"A/USDT": frame(closes, volumes)})
    assert [(t.exit_time, t.exit_reason) for t in trades] == [
        (START + 5 * STEP, "protection:loss"),
        (START + 9 * STEP, "protection:loss"),
    ]


def test_today_profit_blocks_entries_until_midnight_utc() -> None:
    plan = plan_of("""
sizing: {stake: 50%}
protections:
  daily_loss:
    active: today_profit_ratio <= -1%
    block_entries: true
entry:
  long:
    go: volume > 100
exit:
  long:
    out: bars_held >= 1
""")
    start = pd.Timestamp("2024-01-01 23:30", tz="UTC")
    # Enter at 23:40, sell at 23:45 for 5% less: 2.5% of equity lost today. The signals at
    # 23:50 and 23:55 (decided at 23:55 and at midnight) come the same day and the next.
    closes = [100.0, 100, 100, 95, 95, 95, 95, 95, 95, 95]
    volumes = [0, 200, 0, 0, 200, 200, 0, 0, 0, 0]
    trades = both_ways(plan, {"A/USDT": frame(closes, volumes, start)})
    assert [t.signal_time for t in trades] == [start + STEP, start + 5 * STEP]
    assert trades[1].entry_time == pd.Timestamp("2024-01-02", tz="UTC")


def test_the_report_says_how_portfolio_rules_are_judged() -> None:
    frames = {"A/USDT": frame([100.0] * 4, [0, 200, 0, 0])}
    result = simulate(plan_of(LOSS_STOP), lambda pair, tf: frames[pair], ["A/USDT"])
    said = " ".join(result.assumptions.fill_model)
    assert "marked to that close" in said and "close_all" in said
    plain = plan_of("sizing: {stake: 10%}\nentry:\n  long:\n    go: volume > 100\n")
    quiet = simulate(plain, lambda pair, tf: frames[pair], ["A/USDT"])
    assert "portfolio" not in " ".join(quiet.assumptions.fill_model)
