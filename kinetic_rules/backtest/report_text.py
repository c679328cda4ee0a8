"""The terminal summary of a backtest, and the number formats every human-facing report shares.

Strategy text (names, rule names, params) is wrapped in rich `Text`, never parsed as rich
markup: a strategy file is untrusted and `[bold]` in a rule name must print as itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pandas as pd
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from kinetic_rules.backtest.metrics import (
    Breakdowns,
    GroupRow,
    Metrics,
    breakdowns,
    compute_metrics,
    utc,
)
from kinetic_rules.engine.model import BacktestResult
from kinetic_rules.timeframes import format_duration

DASH = "–"  # what every report prints where a number does not exist


def fmt_pct(value: float | None) -> str:
    """A ratio as a percentage with two decimals: 0.0512 → "5.12%"."""
    return DASH if value is None else f"{value * 100:,.2f}%"


def fmt_num(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def fmt_price(value: float | None) -> str:
    """Prices span 1e-8 (meme coins) to 1e5 (BTC): keep 6 significant digits at least."""
    if value is None:
        return DASH
    size = abs(value)
    digits = 2 if size >= 1000 else 4 if size >= 1 else 8
    return f"{value:,.{digits}f}"


def fmt_duration(value: timedelta | None) -> str:
    """ "2 days 4 hours", "3 hours 20 minutes", "45 minutes": the two largest units, in words."""
    if value is None:
        return DASH
    return format_duration(value.total_seconds(), parts=2)


def fmt_time(value: pd.Timestamp | None) -> str:
    return DASH if value is None else utc(value).strftime("%Y-%m-%d %H:%M")


def fmt_profit_factor(metrics: Metrics) -> str:
    if metrics.profit_factor_infinite:
        return "∞"
    return fmt_num(metrics.profit_factor)


def stake_currency(result: BacktestResult) -> str:
    """The quote currency shared by every pair ("USDT"), or "" when they differ."""
    quotes = {p.split("/")[1].split(":")[0] for p in result.pairs if "/" in p}
    return quotes.pop() if len(quotes) == 1 else ""


def fmt_money(value: float | None, currency: str) -> str:
    text = fmt_num(value)
    return f"{text} {currency}" if currency and value is not None else text


def data_range(result: BacktestResult) -> str:
    return f"{fmt_time(result.start)} → {fmt_time(result.end)} UTC"


def gaps_text(result: BacktestResult) -> str:
    """The gap policy and what it did, per pair: `fill: 5 candles filled (BTC/USDT 5, …)`."""
    a = result.assumptions
    counts = dict(a.gap_candles)
    total = sum(counts.values())
    candles = f"{total:,} missing candle{'s' if total != 1 else ''}"
    if a.gaps == "fill":
        head = f"fill: {candles} filled at the previous close, volume 0"
    elif a.durations == "time":
        head = f"keep: {candles} left out (windows written as durations cover their time)"
    else:
        head = f"keep: {candles} left out (every window counts candles held)"
    per_pair = ", ".join(f"{pair} {n:,}" for pair, n in counts.items() if n)
    return head + (f" ({per_pair})" if per_pair else "")


def params_text(result: BacktestResult) -> str:
    return ", ".join(f"{k}={result.params[k]}" for k in sorted(result.params)) or DASH


def metric_rows(metrics: Metrics, currency: str) -> list[tuple[str, str]]:
    """The headline figures, labelled and formatted, in reading order (text and HTML)."""
    m = metrics
    dd_when = (
        f"{fmt_time(m.max_drawdown_peak)} → {fmt_time(m.max_drawdown_trough)}"
        if m.max_drawdown_peak is not None
        else DASH
    )
    return [
        ("Starting balance", fmt_money(m.starting_balance, currency)),
        ("Final balance", fmt_money(m.final_balance, currency)),
        ("Total return", fmt_pct(m.total_return)),
        ("Profit of closed trades", fmt_money(m.profit_total, currency)),
        ("CAGR", fmt_pct(m.cagr)),
        ("Sharpe (daily, ×√365)", fmt_num(m.sharpe)),
        ("Sortino (daily, ×√365)", fmt_num(m.sortino)),
        ("Calmar", fmt_num(m.calmar)),
        ("Max drawdown", fmt_pct(m.max_drawdown)),
        ("Max drawdown amount", fmt_money(m.max_drawdown_abs, currency)),
        ("Max drawdown peak → trough", dd_when),
        ("Longest drawdown", fmt_duration(m.max_drawdown_duration)),
        ("Exposure", fmt_pct(m.exposure)),
        ("Trades", f"{m.trades}" + (f" (+{m.open_trades} open)" if m.open_trades else "")),
        ("Wins / draws / losses", f"{m.wins} / {m.draws} / {m.losses}"),
        ("Win rate", fmt_pct(m.win_rate)),
        ("Profit factor", fmt_profit_factor(m)),
        ("Expectancy per trade", fmt_money(m.expectancy, currency)),
        ("Expectancy ratio", fmt_pct(m.expectancy_ratio)),
        ("Best trade", fmt_pct(m.best_trade)),
        ("Worst trade", fmt_pct(m.worst_trade)),
        ("Average holding time", fmt_duration(m.avg_holding)),
        ("Fees paid", fmt_money(m.fees, currency)),
        *([("Funding paid", fmt_money(m.funding, currency))] if m.funding is not None else []),
        ("Days traded", f"{m.days}"),
    ]


def fmt_short_duration(value: timedelta | None) -> str:
    """ "2d 4h", "3h 20m", "45m 10s": `fmt_duration` in letters, for a terminal's columns."""
    if value is None:
        return DASH
    words = format_duration(value.total_seconds(), parts=2).split()
    return " ".join(
        f"{count}{unit[0]}" for count, unit in zip(words[::2], words[1::2], strict=True)
    )


def group_cells(row: GroupRow, hold: Callable[[timedelta | None], str] = fmt_duration) -> list[str]:
    """Formatted cells of a breakdown row, after the key (text and HTML share them)."""
    return [
        f"{row.trades}",
        fmt_pct(row.win_rate),
        fmt_num(row.profit),
        fmt_pct(row.avg_profit_ratio),
        fmt_pct(row.total_profit_ratio),
        hold(row.avg_holding),
    ]


def group_headers(key: str, currency: str) -> list[str]:
    profit = f"Profit {currency}".strip()
    return [key, "Trades", "Win %", profit, "Avg %", "Total %", "Avg hold"]


def _header(result: BacktestResult) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    lines = [
        ("Strategy", result.strategy_name),
        ("File", result.strategy_file),
        ("sha256", result.strategy_sha256),
        ("Timeframe", result.timeframe),
        ("Pairs", f"{len(result.pairs)}: " + ", ".join(result.pairs)),
        ("Data range", data_range(result)),
        ("Params", params_text(result)),
    ]
    for label, value in lines:
        grid.add_row(label, Text(value))
    return grid


def _assumptions(result: BacktestResult) -> Table:
    a = result.assumptions
    table = Table(title="Assumptions", box=box.SIMPLE_HEAD, show_header=False, expand=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("Fee per side", fmt_pct(a.fee))
    table.add_row("Slippage", fmt_pct(a.slippage))
    table.add_row("Gaps", Text(gaps_text(result)))
    for i, sentence in enumerate(a.fill_model):
        table.add_row("Fill model" if i == 0 else "", Text(f"• {sentence}"))
    for i, sentence in enumerate(a.warmup):
        table.add_row("Warm-up" if i == 0 else "", Text(f"• {sentence}"))
    skipped = a.skipped or ("none",)
    for i, sentence in enumerate(skipped):
        table.add_row("Skipped rules" if i == 0 else "", Text(f"• {sentence}"))
    for i, sentence in enumerate(a.warnings):
        table.add_row("Warnings" if i == 0 else "", Text(f"• {sentence}", style="yellow"))
    return table


def _totals(metrics: Metrics, currency: str) -> Table:
    table = Table(title="Totals", box=box.SIMPLE_HEAD, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for label, value in metric_rows(metrics, currency):
        table.add_row(label, value)
    return table


def _breakdown(title: str, key: str, rows: list[GroupRow], currency: str) -> Table:
    """Holding times in letters ("33m 12s"), so that on an 80-column terminal the names
    keep their width (up to 18 characters) rather than fold into columns of three."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    widest = max([len(key), *(len(row.key) for row in rows)])
    for i, header in enumerate(group_headers(key, currency)):
        if i == 0:
            table.add_column(header, overflow="fold", min_width=min(widest, 18), max_width=18)
        else:
            table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        style = "green" if row.profit > 0 else "red" if row.profit < 0 else None
        table.add_row(Text(row.key), *group_cells(row, fmt_short_duration), style=style)
    if not rows:
        table.add_row(Text("no trades"), *[DASH] * 6)
    return table


def render_summary(
    result: BacktestResult, metrics: Metrics, tables: Breakdowns | None = None
) -> RenderableType:
    """Header, assumptions, totals and the breakdowns (per tag only for a strategy with
    entry tags), for an 80-column terminal."""
    currency = stake_currency(result)
    tables = tables or breakdowns(result)
    per_tag = [_breakdown("Per entry tag", "Tag", tables.tag, currency)] if tables.tag else []
    per_regime = [_breakdown("Per regime", "Regime", tables.regime, currency)]
    return Group(
        _header(result),
        _assumptions(result),
        _totals(metrics, currency),
        _breakdown("Per pair", "Pair", tables.pair, currency),
        _breakdown("Per exit reason", "Exit reason", tables.exit_reason, currency),
        *(per_regime if any(t.regime is not None for t in result.trades) else []),
        *per_tag,
        *_funding(tables.funding, currency),
    )


def _funding(rows: list[tuple[str, int, float]], currency: str) -> list[Table]:
    """Futures: the funding each pair paid (+) or received (−)."""
    if not rows:
        return []
    table = Table(title="Funding per pair", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Pair", overflow="fold", max_width=18)
    table.add_column("Trades", justify="right")
    table.add_column(f"Funding paid {currency}".strip(), justify="right")
    for pair, trades, paid in rows:
        table.add_row(Text(pair), f"{trades}", fmt_num(paid))
    return [table]


def print_summary(
    result: BacktestResult,
    console: Console,
    metrics: Metrics | None = None,
    tables: Breakdowns | None = None,
) -> Metrics:
    """Print the summary; returns the metrics so a caller need not compute them twice."""
    metrics = metrics if metrics is not None else compute_metrics(result)
    console.print(render_summary(result, metrics, tables))
    return metrics
