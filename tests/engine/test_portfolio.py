"""Slots: regime limits, protections, tie-breaking and cooldowns (seed 000 properties 8, 9, 31)."""

from __future__ import annotations

from itertools import pairwise

import pandas as pd
import pytest

from kinetic_rules.backtest.runner import simulate
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.engine.model import BacktestResult
from kinetic_rules.errors import StrategyError
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_text

PAIRS = [f"P{i}/USDT" for i in range(6)]


def frame(volumes: list[float], drift: float = 0.0) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(volumes), freq="5min", tz="UTC", name="date")
    closes = [100.0 + drift * i for i in range(len(volumes))]
    return pd.DataFrame(
        {
            "open": closes,
            "high": [c + 1 for c in closes],
            "low": [c - 1 for c in closes],
            "close": closes,
            "volume": volumes,
        },
        index=index,
    )


def run(
    regime: str, extra: str = "", volumes: list[float] | None = None, cooldown: str = ""
) -> BacktestResult:
    text = f"""
metadata: {{name: slots}}
timeframe: 5m
portfolio: {{max_open_trades: 20}}
orders: {{entry: market, exit: market}}
sizing: {{stake: 1%}}
regime:
  classes:
    bull: {regime}
    bear: otherwise
  max_open_trades: {{bull: 20, bear: 3}}
entry:
  long:
    go: volume > 100
  priority: volume
{cooldown}
{extra}
"""
    plan = build_plan(check(load_text(text, "t.yaml")))
    frames = {pair: frame(volumes or [0, 200, 0, 0, 0, 0], drift=0.0) for pair in PAIRS}
    # Priority by volume: P5 signals loudest, P0 quietest (ties broken by pair name).
    for rank, pair in enumerate(PAIRS):
        frames[pair]["volume"] *= 1 + rank * (0 if "tie" in extra else 1)
    return simulate(plan, lambda pair, tf: frames[pair], PAIRS)


def test_bull_regime_allows_twenty_open_trades() -> None:
    assert len(run("close > 0").trades) == 6


def test_bear_regime_allows_three_chosen_by_priority() -> None:
    trades = run("close < 0").trades
    assert sorted(t.pair for t in trades) == ["P3/USDT", "P4/USDT", "P5/USDT"]
    assert {t.regime for t in trades} == {"bear"}


def test_ties_in_priority_resolve_by_pair_name() -> None:
    trades = run("close < 0", extra="# tie").trades
    assert sorted(t.pair for t in trades) == ["P0/USDT", "P1/USDT", "P2/USDT"]


def test_a_protection_limits_and_blocks_entries() -> None:
    limit = "protections:\n  calm:\n    active: volume > 100\n    max_open_trades: 2\n"
    assert len(run("close > 0", extra=limit).trades) == 2
    blocked = limit + "    block_entries: true\n"
    assert run("close > 0", extra=blocked).trades == []


def test_one_trade_per_pair_and_cooldown_after_an_exit() -> None:
    volumes = [0, 200, 200, 200, 200, 200, 200, 200, 200, 200]
    exits = "exit:\n  long:\n    quick: bars_held >= 1\n"
    plain = run("close > 0", extra=exits, volumes=volumes)
    by_pair = [t for t in plain.trades if t.pair == "P0/USDT"]
    for a, b in pairwise(by_pair):
        assert b.entry_time >= a.exit_time  # never two at once on a pair
    cooled = run("close > 0", extra=exits, volumes=volumes, cooldown="  cooldown: 20m")
    later = [t for t in cooled.trades if t.pair == "P0/USDT"]
    assert len(later) < len(by_pair)
    for a, b in pairwise(later):
        assert b.signal_time + pd.Timedelta("5min") >= a.exit_time + pd.Timedelta("20min")


def test_sizing_never_sees_the_price_of_an_exit_that_has_not_filled_yet() -> None:
    """An exit decided at a close fills at the next open: a stake decided at that same
    close must not know it (Kelly would otherwise count a winner it cannot know about)."""
    text = """
metadata: {name: causal}
timeframe: 5m
orders: {entry: market, exit: market}
market: {pairs: [X/USDT]}
sizing:
  kelly: {lookback: 20, min_trades: 1, reward_risk: 2.0, default: 1%, clamp: [0.5%, 5%]}
entry:
  long:
    go: volume > 100
exit:
  long:
    quick: bars_held >= 1
"""
    plan = build_plan(check(load_text(text, "t.yaml")))
    rising = frame([0, 200, 0, 200, 0, 200, 0, 0], drift=1.0)
    trades = simulate(plan, lambda pair, tf: rising, ["X/USDT"]).trades
    assert len(trades) >= 2 and trades[0].is_winner
    first, second = trades[0], trades[1]
    assert second.signal_time + pd.Timedelta("5min") == first.exit_time  # decided together
    assert second.stake == pytest.approx(0.01 * 10_000)  # default: the win is not known yet
    # The third entry is decided as the second trade's exit is: only the first is known.
    assert trades[2].stake == pytest.approx(0.05 * (10_000 + first.profit))


def test_a_limit_entry_holds_its_slot_until_it_fills_or_expires() -> None:
    """Nobody knows at the close whether a limit will fill: the slot stays taken meanwhile."""
    text = """
metadata: {name: reserve}
timeframe: 5m
portfolio: {max_open_trades: 1}
orders: {entry: limit, exit: market, timeouts: {entry: 10m}}
sizing: {stake: 1%}
entry:
  long:
    go: volume > 100
  priority: volume
"""
    plan = build_plan(check(load_text(text, "t.yaml")))
    loud = frame([0, 900, 0, 0, 0, 0], drift=1.0)  # rising: its limit (the close) never fills
    quiet = frame([0, 200, 0, 0, 0, 0], drift=-1.0)  # falling: its limit would fill at once
    feeds = {"A/USDT": loud, "B/USDT": quiet}
    result = simulate(plan, lambda pair, tf: feeds[pair], ["A/USDT", "B/USDT"])
    assert result.trades == []  # A held the only slot; its order expired unfilled


def test_live_only_inputs_are_absent_in_backtests_and_reported() -> None:
    text = """
metadata: {name: live inputs}
timeframe: 5m
orders: {entry: market, exit: market}
indicators:
  bonus: if book_imbalance > 0.2 then 1 else 0     # exists only with a live order book
entry:
  long:
    go: volume > 100
    no_bonus_needed: volume + bonus > 0
"""
    plan = build_plan(check(load_text(text, "t.yaml")))
    result = simulate(plan, lambda pair, tf: frame([0, 200, 0, 0, 0]), ["X/USDT"])
    assert len(result.trades) == 1  # the bonus is undefined, hence 0: nothing else changes
    assert any("indicators.bonus" in s and "only live" in s for s in result.assumptions.skipped)


def test_live_only_inputs_cannot_be_read_from_another_timeframe() -> None:
    text = "metadata: {name: t}\ntimeframe: 5m\nentry:\n  long:\n    a: book_imbalance@1h > 0\n"
    with pytest.raises(StrategyError, match="exists only in live trading"):
        check(load_text(text, "t.yaml"))


@pytest.mark.parametrize(("per", "capped"), [("pair", False), ("strategy", True)])
def test_kelly_caps_the_stake_rule_counting_the_pair_or_every_trade(per: str, capped: bool) -> None:
    """A wins, then loses; then B signals. Over those two trades full Kelly at a reward/risk
    of 1.1 is 0.5 − 0.5 / 1.1 ≈ 4.5%: B's 10% is capped only when every trade counts."""
    text = f"""
metadata: {{name: capped}}
timeframe: 5m
portfolio: {{max_open_trades: 2}}
orders: {{entry: market, exit: market}}
backtest: {{starting_balance: 1000, slippage: 0}}
sizing:
  stake: 10%
  kelly: {{min_trades: 2, lookback: 2, reward_risk: 1.1, per: {per}}}
entry:
  long:
    go: volume > 100
exit:
  long:
    quick: bars_held >= 1
"""
    plan = build_plan(check(load_text(text, "t.yaml")))
    a = frame([0, 200, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0])
    prices = [100.0, 100, 100, 105, 110, 110, 105, 100, 100, 100, 100, 100]  # up, then down
    a["open"], a["close"] = prices, prices[1:] + prices[-1:]
    b = frame([0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0])
    feeds = {"A/USDT": a, "B/USDT": b}
    first, second, late = simulate(plan, lambda p, tf: feeds[p], list(feeds)).trades
    assert first.is_winner and not second.is_winner and late.pair == "B/USDT"
    equity = 1000 + first.profit + second.profit
    assert second.stake == pytest.approx(0.1 * (1000 + first.profit))  # one trade: no cap yet
    kelly = 0.5 - 0.5 / 1.1
    assert late.stake == pytest.approx((kelly if capped else 0.1) * equity)


def test_a_stake_rule_reading_the_stop_sizes_by_the_initial_stop_until_equity_runs_out() -> None:
    """Risk 1% of equity down to the initial stop 2% away: half the equity per entry, so
    two entries of one close take it all and a third one gets no stake."""
    text = """
metadata: {name: risk}
timeframe: 5m
portfolio: {max_open_trades: 6}
orders: {entry: market, exit: market}
sizing: {stake: 1% * entry_price / (entry_price - stop)}
stoploss: {initial: entry_price * 0.98}
entry:
  long:
    go: volume > 100
  priority: volume
"""
    plan = build_plan(check(load_text(text, "t.yaml")))
    frames = {pair: frame([0, 200, 0, 0, 0, 0]) for pair in PAIRS[:3]}
    for rank, pair in enumerate(PAIRS[:3]):
        frames[pair]["volume"] *= 1 + rank
    trades = simulate(plan, lambda pair, tf: frames[pair], PAIRS[:3]).trades
    assert sorted(t.pair for t in trades) == ["P1/USDT", "P2/USDT"]  # the loudest two
    for trade in trades:
        assert trade.initial_stop == pytest.approx(0.98 * trade.entry_price)
        assert trade.stake == pytest.approx(0.5 * 10_000)
