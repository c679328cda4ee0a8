"""The terminal summary: fits 80 columns, shows the assumptions, prints strategy text as-is."""

from __future__ import annotations

import io
from datetime import timedelta

from rich.console import Console

from kinetic_rules.backtest.metrics import compute_metrics
from kinetic_rules.backtest.report_text import (
    fmt_duration,
    fmt_pct,
    fmt_price,
    fmt_short_duration,
    print_summary,
    render_summary,
)
from kinetic_rules.engine.model import BacktestResult


def printed(result: BacktestResult, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    print_summary(result, console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_summary_fits_80_columns_and_has_every_table(hand_result: BacktestResult) -> None:
    text = printed(hand_result)
    assert max(len(line) for line in text.splitlines()) <= 80
    for title in ("Assumptions", "Totals", "Per pair", "Per exit reason", "Per regime"):
        assert title in text
    assert "0.10%" in text and "0.05%" in text  # fee and slippage
    assert "next candle's open" in text and "orderbook_imbalance" in text
    assert "66.67%" in text  # win rate
    assert "2.67" in text  # profit factor
    assert "roc_threshold=1.5" in text


def test_a_strategy_without_regimes_gets_no_regime_table(hand_result: BacktestResult) -> None:
    from dataclasses import replace

    plain = replace(hand_result, trades=[replace(t, regime=None) for t in hand_result.trades])
    assert "Per regime" not in printed(plain)
    assert "Per pair" in printed(plain)


def test_long_names_still_fit(hand_result: BacktestResult) -> None:
    for trade in hand_result.trades:
        trade.exit_reason = "a_very_long_exit_rule_name_that_goes_on_and_on"
    hand_result.strategy_name = "N" * 150
    text = printed(hand_result)
    assert max(len(line) for line in text.splitlines()) <= 80


def test_pair_names_and_exit_reasons_stay_whole_on_80_columns(
    hand_result: BacktestResult,
) -> None:
    """Holding times of days in words once squeezed the name column to three letters."""
    for number, trade in enumerate(hand_result.trades):
        trade.pair = "1000SATS/USDT" if number % 2 else "MATIC/USDT"
        trade.exit_reason = "trailing_stop"
        trade.exit_time = trade.entry_time + timedelta(days=3, hours=7, minutes=59, seconds=31)
    text = printed(hand_result)
    assert max(len(line) for line in text.splitlines()) <= 80
    rows = [line.split() for line in text.splitlines() if line.strip()]
    assert any(r[0] == "1000SATS/USDT" for r in rows)
    assert any(r[0] == "MATIC/USDT" and r[-2:] == ["3d", "8h"] for r in rows)
    assert any(r[0] == "trailing_stop" for r in rows)


def test_strategy_text_is_not_rich_markup(hand_result: BacktestResult) -> None:
    hand_result.strategy_name = "[bold red]boom[/]"
    hand_result.trades[0].exit_reason = "[red]x[/red]"
    text = printed(hand_result, width=120)
    assert "[bold red]boom[/]" in text
    assert "[red]x[/red]" in text


def test_empty_result_prints_dashes(empty_result: BacktestResult) -> None:
    text = printed(empty_result)
    assert "–" in text and "nan" not in text.lower() and "inf" not in text.lower()


def test_infinite_profit_factor_reads_as_infinity(hand_result: BacktestResult) -> None:
    hand_result.trades = [t for t in hand_result.trades if t.profit > 0]
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(render_summary(hand_result, compute_metrics(hand_result)))
    assert "∞" in console.file.getvalue()  # type: ignore[attr-defined]


def test_formats() -> None:
    assert fmt_pct(0.051234) == "5.12%"
    assert fmt_pct(None) == "–"
    assert fmt_duration(timedelta(days=2, hours=4, minutes=5)) == "2 days 4 hours"
    assert fmt_duration(timedelta(days=2, hours=23, minutes=59)) == "3 days"
    assert fmt_duration(timedelta(hours=1, minutes=20, seconds=31)) == "1 hour 21 minutes"
    assert fmt_duration(timedelta(minutes=45)) == "45 minutes"
    assert fmt_short_duration(timedelta(days=2, hours=23, minutes=59)) == "3d"
    assert fmt_short_duration(timedelta(hours=1, minutes=20, seconds=31)) == "1h 21m"
    assert fmt_short_duration(timedelta(minutes=33, seconds=12)) == "33m 12s"
    assert fmt_short_duration(None) == "–"
    assert fmt_price(65000.123) == "65,000.12"
    assert fmt_price(0.00001234) == "0.00001234"
