"""`kinetic-rules explain` on each shipped strategy, at real candles of the fixture store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.backtest.explain import explain as explain_text
from kinetic_rules.backtest.explain import trade_state
from kinetic_rules.backtest.runner import BacktestRequest, prepare, run_backtest
from kinetic_rules.cli.app import main
from kinetic_rules.engine.model import LIQUIDATION, TRAILING_STOP
from tests.conftest import STRATEGIES


def explain(store: Path, strategy: str, pair: str, at: str, *more: str) -> None:
    args = ["explain", str(STRATEGIES / strategy), "--data", str(store), "--pair", pair]
    assert main([*args, "--at", at, *more]) == 0


def test_rules_comparing_the_regime_show_it_by_name(
    fixture_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """adaptive_mtf compares `regime == "trending_bullish"`: this used to crash explain."""
    explain(fixture_store, "adaptive_mtf.yaml", "BTC/USDT", "2024-02-25T20:15")
    captured = capsys.readouterr()
    out = captured.out
    assert "internal error" not in captured.err
    assert "regime: trending_bullish" in out  # BTC turned trending on this candle
    lines = [line.strip() for line in out.splitlines()]
    assert 'regime == "trending_bullish" = true' in lines
    assert "regime = trending_bullish" in lines
    assert "regime[1] = uncertain" in lines  # the candle before
    assert not any(line.startswith('"') for line in lines)  # a literal is not an operand
    assert "trade: none open on this pair at this candle" in out


def test_operands_are_named_as_the_strategy_names_them(
    fixture_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Definitions show by their names, not inlined; two with the same formula keep theirs."""
    explain(fixture_store, "confluence.yaml", "ETH/USDT", "2024-03-05T13:30", "--no-trades")
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert "✗ agreement: confluence_long or solo_long  →  false" in lines
    assert "long_votes = 0" in lines
    # keltner_confidence and reversal_strength are both clamp(abs(rsi14 - 50) / 30, 0, 1)
    assert "keltner_confidence >= 0.3 = true" in lines
    assert "keltner_confidence = 0.600845" in lines
    assert "reversal_strength = 0.600845" in lines
    assert "rsi14 = 68.0253" in lines
    # nothing voted: long_confidence divides 0 by a weight of 0
    assert "long_confidence = undefined (warm-up, no data, or a division by zero)" in lines
    assert not any("clamp(" in line and line.endswith("0.600845") for line in lines)


@pytest.mark.parametrize(
    ("strategy", "pair", "at"),
    [
        ("kinetic_empire.yaml", "SOL/USDT", "2024-02-20T08:00"),
        ("kinetic_empire.yaml", "ETH/USDT", "2024-03-14T23:55"),
        ("kinetic_v3.yaml", "BTC/USDT", "2024-02-15T06:00"),
        ("kinetic_v3.yaml", "ETH/USDT", "2024-03-05T13:30"),
        ("confluence.yaml", "BTC/USDT", "2024-02-20T08:00"),
        ("confluence.yaml", "ETH/USDT", "2024-03-14T23:45"),
        ("adaptive_mtf.yaml", "SOL/USDT", "2024-02-15T00:00"),
        ("adaptive_mtf.yaml", "ETH/USDT", "2024-03-10T12:00"),
    ],
)
def test_every_strategy_explains_any_candle(
    fixture_store: Path, capsys: pytest.CaptureFixture[str], strategy: str, pair: str, at: str
) -> None:
    explain(fixture_store, strategy, pair, at, "--no-trades")
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{pair} — candle ")
    assert "entry long: " in captured.out and "internal error" not in captured.err
    assert "= nan" not in captured.out and "→  nan" not in captured.out


FUTURES = Path(__file__).parents[1] / "engine" / "strategies" / "futures_both_sides.yaml"


@pytest.mark.parametrize(
    ("side", "reason"),
    [("long", LIQUIDATION), ("short", LIQUIDATION), ("short", TRAILING_STOP)],
)
def test_explain_agrees_with_the_engine_on_a_futures_trade_near_liquidation(
    futures_store: Path, side: str, reason: str
) -> None:
    """At the last close before a leveraged BTC trade ends (liquidated at the mark price, or
    stopped), explain shows the engine's trade: its stop, liquidation price, exit, profit."""
    request = BacktestRequest(FUTURES, futures_store)
    engine = run_backtest(request)
    trade = next(
        t
        for t in engine.trades
        if t.pair == "BTC/USDT" and t.side == side and t.exit_reason == reason
    )
    assert trade.exit_time is not None and trade.liquidation_price is not None
    candle = trade.exit_time - pd.Timedelta("15min")
    state = trade_state(request, prepare(request), "BTC/USDT", candle)
    assert state is not None
    shown = state.trade
    assert shown.id == trade.id and shown.side == side
    assert shown.leverage == trade.leverage > 1
    assert shown.liquidation_price == trade.liquidation_price
    assert state.stop == trade.stop  # the stop in force at the exit candle
    assert (shown.exit_time, shown.exit_reason) == (trade.exit_time, reason)
    assert shown.exit_price == trade.exit_price
    assert shown.profit == trade.profit and shown.funding == trade.funding
    if reason == TRAILING_STOP:
        assert any(since is not None and since <= candle for since in state.trailing.values())
    text = explain_text(request, "BTC/USDT", candle)
    assert f"liquidation price {trade.liquidation_price:.6g}" in text
    assert f"stop after this close {trade.stop:.6g}" in text
    assert f"({reason}), profit {trade.profit:.2f}" in text
