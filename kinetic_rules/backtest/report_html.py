"""report.html: one self-contained page (inline CSS and SVG, no script, no network).

A strategy file is untrusted input, so every string that came from it (names, params, rule
and regime names, fill-model sentences) passes through `esc` before it reaches the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape

import numpy as np
import pandas as pd

from kinetic_rules.backtest.metrics import (
    Breakdowns,
    GroupRow,
    Metrics,
    breakdowns,
    drawdown,
    equity_curve,
    monthly_returns,
    utc,
)
from kinetic_rules.backtest.report_svg import MARKED_TRADES, candle_chart, line_chart
from kinetic_rules.backtest.report_text import (
    DASH,
    data_range,
    fmt_duration,
    fmt_num,
    fmt_pct,
    fmt_price,
    fmt_time,
    gaps_text,
    group_cells,
    group_headers,
    metric_rows,
    params_text,
    stake_currency,
)
from kinetic_rules.engine.model import BacktestResult, Trade
from kinetic_rules.secrets import mask, masking_batch

OPEN_SECTIONS = 4  # up to this many traded pairs, their sections start unfolded
OVERVIEW_BARS = 400  # bars of each pair's chart on the overview page (detail pages: MAX_BARS)
OVERVIEW_BUDGET = 16_000  # bars of all pairs' charts together: many pairs get fewer each
FEWEST_BARS = 120  # but never fewer than this (about two days a bar over eight months)
TABLE_ROWS = 20  # trades listed per pair on the overview: the largest wins and losses
PAIR_PAGES = "pairs"  # folder of the per-pair detail pages, next to report.html
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;
margin:0 auto;max-width:1100px;padding:16px}
h1{font-size:22px;margin:0 0 8px;overflow-wrap:break-word}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid #d9e2ec}h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:4px 0 12px;font-variant-numeric:tabular-nums}
td,th{padding:3px 8px;border-bottom:1px solid #eef2f6;text-align:right;white-space:nowrap}
th{background:#f5f7fa}td.k,th.k{text-align:left}
.kv td{text-align:left;white-space:normal;overflow-wrap:break-word;word-break:normal}
.kv td:first-child{font-weight:600;white-space:nowrap;width:1%}
.nw{white-space:nowrap}.hash{overflow-wrap:anywhere}
p.note{color:#52606d;margin:2px 0 10px}
.metrics{columns:2;column-gap:32px}.metrics table{width:100%}
.metrics td:last-child{white-space:nowrap}
.pos{color:#15803d}.neg{color:#dc2626}.none{color:#7b8794}
svg{width:100%;height:auto;display:block;font-size:11px;fill:#52606d}
svg .g{stroke:#e4e7eb;fill:none}svg .line{fill:none;stroke:#2563eb;stroke-width:1.5}
svg .area{fill:#fca5a5;stroke:#dc2626;stroke-width:1}svg .t{stroke-width:1}
details{margin:8px 0;border:1px solid #e4e7eb;border-radius:4px;padding:4px 10px}
summary{cursor:pointer;font-weight:600}.wrap{overflow-x:auto;max-width:100%}
.mr td{min-width:52px}
@media (max-width:760px){body{padding:8px}.metrics{columns:1}
.metrics td:last-child{white-space:normal}td,th{padding:2px 5px}}
"""


def esc(value: object) -> str:
    """Every piece of text on the page goes through here: masked (no secret reaches the
    file), then escaped, quotes included."""
    return escape(mask(str(value)), quote=True)


def _sign_class(value: float | None) -> str:
    return "pos" if value is not None and value > 0 else "neg" if value and value < 0 else ""


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], classes: Iterable[str] = ()
) -> str:
    """A table whose first column is text (left) and the rest numbers (right)."""
    head = "".join(
        f'<th class="k">{esc(h)}</th>' if i == 0 else f"<th>{esc(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    row_classes = list(classes)
    for n, row in enumerate(rows):
        cls = f' class="{row_classes[n]}"' if n < len(row_classes) and row_classes[n] else ""
        cells = "".join(
            f'<td class="k">{esc(c)}</td>' if i == 0 else f"<td>{esc(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<div class="wrap"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _header(result: BacktestResult) -> str:
    a = result.assumptions
    facts = [
        ("File", result.strategy_file),
        ("sha256", result.strategy_sha256),
        ("Timeframe", result.timeframe),
        ("Pairs", f"{len(result.pairs)}: " + ", ".join(result.pairs)),
        ("Data range", data_range(result)),
        ("Params", params_text(result)),
        ("Fee per side", fmt_pct(a.fee)),
        ("Slippage", fmt_pct(a.slippage)),
        ("Gaps", gaps_text(result)),
    ]
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{_words(k, v)}</td></tr>" for k, v in facts)
    fill = "".join(f"<li>{esc(s)}</li>" for s in a.fill_model) or f"<li>{DASH}</li>"
    skipped = "".join(f"<li>{esc(s)}</li>" for s in a.skipped) or "<li>none</li>"
    warmup = "".join(f"<li>{esc(s)}</li>" for s in a.warmup) or f"<li>{DASH}</li>"
    warnings = "".join(f'<li class="neg">{esc(s)}</li>' for s in a.warnings)
    return (
        f"<h1>Backtest: {esc(result.strategy_name)}</h1>"
        f'<table class="kv">{rows}</table>'
        f"<h3>Fill model</h3><ul>{fill}</ul><h3>Warm-up</h3><ul>{warmup}</ul>"
        f"<h3>Skipped rules</h3><ul>{skipped}</ul>"
        + (f"<h3>Warnings</h3><ul>{warnings}</ul>" if warnings else "")
    )


def _words(key: str, value: str) -> str:
    """A header value, escaped; the lines of a long list break between its items (pair
    names, params), never inside one, and the hash anywhere (it is one long word)."""
    if key == "sha256":
        return f'<span class="hash">{esc(value)}</span>'
    if key in ("Pairs", "Params"):
        return ", ".join(f'<span class="nw">{esc(item)}</span>' for item in value.split(", "))
    return esc(value)


def _metrics(metrics: Metrics, currency: str) -> str:
    rows = metric_rows(metrics, currency)
    half = (len(rows) + 1) // 2
    tables = "".join(
        '<table class="kv">'
        + "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in chunk)
        + "</table>"
        for chunk in (rows[:half], rows[half:])
    )
    return f'<h2>Metrics</h2><div class="metrics">{tables}</div>'


def _monthly(result: BacktestResult, curve: pd.Series) -> str:
    """A year × month grid, each cell tinted by its return (relative to the largest)."""
    months = monthly_returns(result, curve)
    if len(months) == 0:
        return '<h2>Monthly returns</h2><p class="none">no data</p>'
    scale = float(np.abs(months.to_numpy()).max()) or 1.0
    by_year: dict[int, dict[int, float]] = {}
    for stamp, value in zip(pd.DatetimeIndex(months.index), months.to_numpy(), strict=True):
        by_year.setdefault(stamp.year, {})[stamp.month] = float(value)
    head = "".join(f"<th>{m}</th>" for m in MONTHS)
    lines = [f'<tr><th class="k">Year</th>{head}<th>Year</th></tr>']
    for year in sorted(by_year):
        cells = []
        for month in range(1, 13):
            value = by_year[year].get(month)
            if value is None:
                cells.append("<td></td>")
                continue
            alpha = 0.1 + 0.6 * min(1.0, abs(value) / scale)
            rgb = "21,128,61" if value >= 0 else "220,38,38"
            cells.append(f'<td style="background:rgba({rgb},{alpha:.2f})">{fmt_pct(value)}</td>')
        total = float(np.prod([1 + v for v in by_year[year].values()]) - 1)
        cells.append(f'<td class="{_sign_class(total)}"><b>{fmt_pct(total)}</b></td>')
        lines.append(f'<tr><td class="k">{year}</td>{"".join(cells)}</tr>')
    grid = f'<div class="wrap"><table class="mr">{"".join(lines)}</table></div>'
    return f"<h2>Monthly returns</h2>{grid}"


def _breakdown(title: str, key: str, rows: list[GroupRow], currency: str) -> str:
    cells = [[row.key, *group_cells(row)] for row in rows]
    classes = [_sign_class(row.profit) for row in rows]
    return f"<h3>{esc(title)}</h3>" + _table(group_headers(key, currency), cells, classes)


def describe(trade: Trade) -> str:
    """The hover text of a trade's marks on its chart."""
    return (
        f"#{trade.id} {trade.side} {trade.pair}: in {fmt_time(trade.entry_time)} "
        f"@ {fmt_price(trade.entry_price)}, out {fmt_time(trade.exit_time)} "
        f"@ {fmt_price(trade.exit_price)} ({trade.exit_reason or 'open'}), "
        f"{fmt_pct(trade.profit_ratio)}"
    )


TRADE_HEADERS = (
    "#",
    "Side",
    "Regime",
    "Entry",
    "Entry price",
    "Exit",
    "Exit price",
    "Exit reason",
    "Profit",
    "Profit %",
    "Held",
)


MARGIN_HEADERS = ("Leverage", "Margin", "Liq. price", "Funding")


def _trade_rows(trades: Sequence[Trade], tags: bool, margin: bool) -> str:
    """The trades of one pair; the tags and margin columns only for strategies that have
    entry tags, or trade futures."""
    headers = [*TRADE_HEADERS, *(["Tags"] if tags else []), *(MARGIN_HEADERS if margin else ())]
    rows = []
    for t in trades:
        row = [
            str(t.id),
            t.side,
            t.regime or DASH,
            fmt_time(t.entry_time),
            fmt_price(t.entry_price),
            fmt_time(t.exit_time),
            fmt_price(t.exit_price),
            t.exit_reason or "open",
            fmt_num(t.profit),
            fmt_pct(t.profit_ratio),
            fmt_duration(t.duration),
        ]
        row += [" ".join(t.tags) or DASH] if tags else []
        if margin:
            row += [fmt_num(t.leverage, 0), fmt_num(t.margin), fmt_price(t.liquidation_price)]
            row += [fmt_num(t.funding)]
        rows.append(row)
    return _table(headers, rows, [_sign_class(t.profit) for t in trades])


def _pair_candles(result: BacktestResult, pair: str) -> pd.DataFrame:
    """The pair's candles over the traded span (warm-up left out)."""
    candles = result.candles.get(pair)
    if candles is None or len(candles) == 0:
        return pd.DataFrame(columns=["open", "high", "low", "close"])
    index = pd.DatetimeIndex(candles.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    candles = candles.set_axis(index)
    if not index.is_monotonic_increasing:
        candles = candles.sort_index()
    times = pd.DatetimeIndex(candles.index).as_unit("ns").asi8  # sorted: cut by searching
    first = int(np.searchsorted(times, utc(result.start).value, side="left"))
    last = int(np.searchsorted(times, utc(result.end).value, side="right"))
    inside = candles.iloc[first:last]
    return inside if len(inside) else candles


def pair_page_name(pair: str) -> str:
    """The file name of a pair's detail page: `BTC/USDT` → `BTC_USDT.html`."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", mask(pair)).strip(".") + ".html"


def _trades_by_pair(result: BacktestResult) -> dict[str, list[Trade]]:
    by_pair_trades: dict[str, list[Trade]] = {}
    for trade in sorted(result.trades, key=lambda t: t.id):
        by_pair_trades.setdefault(trade.pair, []).append(trade)
    return by_pair_trades


def _columns(result: BacktestResult) -> tuple[bool, bool]:
    """Whether trade tables need the tags column, and the futures margin columns."""
    tags = bool(result.tags) or any(t.tags for t in result.trades)
    return tags, any(t.liquidation_price is not None for t in result.trades)


def _highlights(trades: list[Trade], profits: list[float]) -> list[Trade]:
    """The largest wins and losses, in id order: what a reader looks for first."""
    if len(trades) <= TABLE_ROWS:
        return trades
    order = sorted(range(len(trades)), key=lambda i: (profits[i], trades[i].id))
    ranked = [trades[i] for i in order]
    picked = {t.id: t for t in (*ranked[: TABLE_ROWS // 2], *ranked[-(TABLE_ROWS // 2) :])}
    return [picked[i] for i in sorted(picked)]


def overview_bars(charts: int) -> int:
    """Bars of each pair's chart on the overview: 400 up to 40 traded pairs, then fewer so
    that the page stays light (every pair's full chart is on its detail page)."""
    return max(FEWEST_BARS, min(OVERVIEW_BARS, OVERVIEW_BUDGET // max(1, charts)))


def _pairs(result: BacktestResult, detail: bool) -> str:
    """One collapsible section per pair that traded: its chart, then its trades (the
    largest wins and losses when there are many; every trade is in the trade files)."""
    by_pair_trades = _trades_by_pair(result)
    if not by_pair_trades:
        return '<h2>Trades</h2><p class="none">no trades</p>'
    parts = ["<h2>Trades by pair</h2>"]
    if len(result.trades) > TABLE_ROWS:
        where = "trades.csv and trades.json" + (
            f", and the pages in {PAIR_PAGES}/" if detail else ""
        )
        parts.append(f'<p class="note">Every trade, with its fills: {esc(where)}.</p>')
    if any(len(trades) > MARKED_TRADES for trades in by_pair_trades.values()):
        parts.append(
            f'<p class="note">Charts of pairs with more than {MARKED_TRADES} trades count them '
            "in a band under the candles, by the bar they entered in: green where they made "
            "money together, red where they lost, darker for more trades.</p>"
        )
    opened = " open" if len(by_pair_trades) <= OPEN_SECTIONS else ""
    bars = overview_bars(len(by_pair_trades))
    tags, margin = _columns(result)
    for pair in sorted(by_pair_trades):
        trades = by_pair_trades[pair]
        profits = [t.profit for t in trades]  # each a sum over fills: worked out once
        profit = sum(profits)
        candles = _pair_candles(result, pair)
        title = f"{pair} candles"
        chart = candle_chart(candles, trades, describe, title=title, bars=bars, profits=profits)
        shown = _highlights(trades, profits)
        note = ""
        if len(shown) < len(trades):
            note = (
                f'<p class="note">The {len(shown)} largest wins and losses of {len(trades)} '
                "trades.</p>"
            )
        link = ""
        if detail:
            href = f"{PAIR_PAGES}/{pair_page_name(pair)}"
            link = f'<p><a href="{esc(href)}">{esc(pair)}: full chart and every trade</a></p>'
        parts.append(
            f'<details{opened}><summary><span class="nw">{esc(pair)}</span> — '
            f'<span class="nw">{len(trades)} trade(s)</span>, '
            f'<span class="nw {_sign_class(profit)}">{esc(fmt_num(profit))}</span></summary>'
            f"{chart}{link}{note}{_trade_rows(shown, tags, margin)}</details>"
        )
    return "".join(parts)


def render_pair_page(result: BacktestResult, pair: str) -> str:
    """A pair's detail page: its candles at full chart width, every trade marked and listed."""
    with masking_batch():
        return _pair_page(result, pair)


def _pair_page(result: BacktestResult, pair: str) -> str:
    trades = _trades_by_pair(result).get(pair, [])
    tags, margin = _columns(result)
    chart = candle_chart(_pair_candles(result, pair), trades, describe, title=f"{pair} candles")
    profit = sum(t.profit for t in trades)
    body = (
        f'<h1><span class="nw">{esc(pair)}</span>: {esc(result.strategy_name)}</h1>'
        f'<p><a href="../report.html">back to the report</a> · {len(trades)} trade(s), '
        f'<span class="{_sign_class(profit)}">{esc(fmt_num(profit))}</span></p>'
        f"{chart}{_trade_rows(trades, tags, margin)}"
    )
    return _page(f"{pair}: {result.strategy_name}", body)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def render_html(
    result: BacktestResult,
    metrics: Metrics,
    *,
    detail: bool = False,
    tables: Breakdowns | None = None,
    curve: pd.Series | None = None,
) -> str:
    """The whole page as text; identical results give identical bytes. With `detail`, each
    pair's section links to its page (written by report_files). `curve` is
    `equity_curve(result)` when the caller has it already."""
    with masking_batch():
        tables = tables or breakdowns(result)
        curve = equity_curve(result) if curve is None else curve
        return _overview(result, metrics, detail, tables, curve)


def _overview(
    result: BacktestResult, metrics: Metrics, detail: bool, tables: Breakdowns, curve: pd.Series
) -> str:
    currency = stake_currency(result)
    equity = line_chart(curve, title="equity")
    dd = line_chart(drawdown(curve), title="drawdown", percent=True, how="min", area=True)
    per_tag = [_breakdown("Per entry tag", "Tag", tables.tag, currency)] if tables.tag else []
    per_regime = [_breakdown("Per regime", "Regime", tables.regime, currency)]
    sections = [
        _header(result),
        _metrics(metrics, currency),
        f"<h2>Equity {esc(currency)}</h2>{equity}",
        f"<h2>Drawdown</h2>{dd}",
        _monthly(result, curve),
        "<h2>Breakdowns</h2>",
        _breakdown("Per pair", "Pair", tables.pair, currency),
        _breakdown("Per exit reason", "Exit reason", tables.exit_reason, currency),
        *(per_regime if any(t.regime is not None for t in result.trades) else []),
        *per_tag,
        *_funding(tables.funding, currency),
        _pairs(result, detail),
    ]
    return _page(f"Backtest: {result.strategy_name}", "".join(sections))


def _funding(rows: list[tuple[str, int, float]], currency: str) -> list[str]:
    """Futures: the funding each pair paid (+) or received (−)."""
    if not rows:
        return []
    headers = ["Pair", "Trades", f"Funding paid {currency}".strip()]
    cells = [[pair, f"{n}", fmt_num(paid)] for pair, n, paid in rows]
    classes = [_sign_class(-paid) for _, _, paid in rows]
    return ["<h3>Funding per pair</h3>" + _table(headers, cells, classes)]
