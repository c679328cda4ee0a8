"""The backtest's files, byte-identical for equal runs: results.json (the summary),
trades.json (every trade with its fills) and trades.csv (one row per trade), report.html
(the overview), and with `detail` a page per pair under pairs/. The summary and the
overview stay small however many trades there are; the trade files hold every one.

Determinism rules: keys sorted, floats rounded to 12 significant digits, times in ISO-8601
UTC, no wall-clock time (not even the run's duration) in any file, no secret (every text
value passes through the one mask as it is written: `plain`, `trade_record`, the
page's `esc`). Each file is written to
a temporary sibling and moved into place, so a crash never leaves half a report behind.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from kinetic_rules.backtest.metrics import (
    Breakdowns,
    Metrics,
    breakdowns,
    daily_equity,
    equity_curve,
    iso_time,
    monthly_returns,
)
from kinetic_rules.backtest.report_html import (
    PAIR_PAGES,
    pair_page_name,
    render_html,
    render_pair_page,
)
from kinetic_rules.data.atomic import atomic_write
from kinetic_rules.engine.model import BacktestResult, Trade
from kinetic_rules.secrets import mask, masking_batch

Progress = Callable[[str, int, int], None]  # (what, done, total)

FORMAT_VERSION = 2  # bump when a reader of results.json would break (2: trades in trades.json)
SIGNIFICANT_DIGITS = 12
# the format spec made once: an f-string nesting the digits builds it again for every value
_ROUNDED = f".{SIGNIFICANT_DIGITS}g"

TRADE_COLUMNS = (
    "id",
    "pair",
    "side",
    "regime",
    "signal_time",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "amount",
    "stake",
    "leverage",
    "margin",
    "liquidation_price",
    "tags",
    "initial_stop",
    "final_stop",
    "exit_reason",
    "profit",
    "profit_ratio",
    "fees",
    "funding",
    "duration_minutes",
)


def plain(value: Any) -> Any:
    """A JSON-ready copy: rounded finite floats or None, ISO times, seconds for durations,
    every text (dict keys too) masked: what reaches a file is what this returns."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float | np.floating):
        number = float(value)
        return float(format(number, _ROUNDED)) if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, pd.Timestamp):
        return iso_time(value)
    if isinstance(value, timedelta):
        return plain(value.total_seconds())
    if isinstance(value, dict):
        return {mask(str(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    raise TypeError(f"cannot write {type(value).__name__} to a report")


def trade_record(trade: Trade, masked: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything about one trade, its fills included, as JSON-ready values (rounded,
    masked): the same values `plain` gives, without walking a generic tree. `masked`
    keeps texts already masked, for a batch of trades (pair names, reasons repeat). The
    keys come in sorted order, the order trades.json writes them in."""
    profit, fees = trade.profit_and_fees()
    known = {} if masked is None else masked
    number, time = _value, _time

    def _text(value: str | None) -> str | None:
        if value is None:
            return None
        hidden = known.get(value)
        if hidden is None:
            hidden = known[value] = mask(value)
        return hidden

    return {
        "amount": number(trade.amount),
        "duration_minutes": _minutes_held(trade),
        "entry_price": number(trade.entry_price),
        "entry_time": time(trade.entry_time),
        "exit_price": number(trade.exit_price),
        "exit_reason": _text(trade.exit_reason),
        "exit_time": time(trade.exit_time),
        "fees": number(fees),
        "fills": [
            {
                "amount": number(f.amount),
                "fee": number(f.fee),
                "price": number(f.price),
                "reason": _text(f.reason),
                "time": time(f.time),
            }
            for f in trade.fills
        ],
        "final_stop": number(trade.stop),
        "funding": number(trade.funding),
        "id": number(trade.id),
        "initial_stop": number(trade.initial_stop),
        "leverage": number(trade.leverage),
        "liquidation_price": number(trade.liquidation_price),
        "margin": number(trade.margin),
        "pair": _text(trade.pair),
        "profit": number(profit),
        "profit_ratio": number(profit / trade.stake if trade.stake else 0.0),  # as Trade
        "regime": _text(trade.regime),
        "side": _text(trade.side),
        "signal_time": time(trade.signal_time),
        "stake": number(trade.stake),
        "tags": [_text(tag) for tag in trade.tags],
    }


_EXACT_NS = 2**53  # below this, a count of nanoseconds is exact as a float


def _minutes_held(trade: Trade) -> float | None:
    """`trade.duration.total_seconds() / 60`, rounded as `plain` rounds, from the times'
    nanoseconds (`Timestamp.value`) rather than a Timedelta: a Timedelta's total_seconds
    divides its count by its unit's count a second, which below 2**53 nanoseconds is the
    same float as nanoseconds / 1e9 (both are the exact quotient, rounded once)."""
    if trade.exit_time is None:
        return None
    held = trade.exit_time.value - trade.entry_time.value
    if -_EXACT_NS < held < _EXACT_NS:
        minutes = held / 1e9 / 60
    else:
        duration = trade.duration
        assert duration is not None
        minutes = duration.total_seconds() / 60
    return float(format(minutes, _ROUNDED)) if math.isfinite(minutes) else None


def _value(value: Any) -> Any:
    """`plain` for one number: floats rounded (None when not finite), integers as they are."""
    if type(value) is float:
        return float(format(value, _ROUNDED)) if math.isfinite(value) else None
    if type(value) is int or value is None:
        return value
    return plain(value)


_ISO: dict[int, str] = {}  # open times repeat (fills, several trades a candle): format once


def _time(value: pd.Timestamp | None) -> str | None:
    if value is None:
        return None
    stamp = value if isinstance(value, pd.Timestamp) else pd.Timestamp(value)
    # a naive time is UTC already; an aware one's value is its UTC instant: one key either way
    key = stamp.value
    text = _ISO.get(key)
    if text is None:
        text = _iso_of_instant(key)
        if len(_ISO) < 1_000_000:
            _ISO[key] = text
    return text


_EPOCH = datetime(1970, 1, 1)


def _iso_of_instant(nanoseconds: int) -> str:
    """`iso_time` of the UTC instant `nanoseconds` since the epoch, without pandas' time
    zone conversion (a second's resolution: the nanoseconds below it are dropped)."""
    moment = _EPOCH + timedelta(microseconds=nanoseconds // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _by_date(series: pd.Series, pattern: str) -> dict[str, float]:
    stamps = pd.DatetimeIndex(series.index)
    return {ts.strftime(pattern): float(v) for ts, v in zip(stamps, series.to_numpy(), strict=True)}


def results_document(
    result: BacktestResult,
    metrics: Metrics,
    tables: Breakdowns | None = None,
    curve: pd.Series | None = None,
) -> dict[str, Any]:
    """The whole of results.json as a dict (also handy for tests and other tools); `curve`
    is `equity_curve(result)` when the caller has it already."""
    a = result.assumptions
    tables = tables or breakdowns(result)
    curve = equity_curve(result) if curve is None else curve
    document = {
        "format": FORMAT_VERSION,
        "strategy": {
            "name": result.strategy_name,
            "file": result.strategy_file,
            "sha256": result.strategy_sha256,
        },
        "params": result.params,
        "timeframe": result.timeframe,
        "pairs": list(result.pairs),
        "regimes": list(result.regimes),
        "tags": list(result.tags),
        "data_range": {"start": result.start, "end": result.end},
        "assumptions": {
            "fee": a.fee,
            "slippage": a.slippage,
            "starting_balance": a.starting_balance,
            "fill_model": list(a.fill_model),
            "skipped": list(a.skipped),
            "warnings": list(a.warnings),
            "gaps": {
                "policy": a.gaps,
                "durations": a.durations,
                "candles": dict(a.gap_candles),
            },
            "warmup": list(a.warmup),
        },
        "metrics": metrics.to_dict(),
        "breakdowns": {
            "pair": [row.to_dict() for row in tables.pair],
            "exit_reason": [row.to_dict() for row in tables.exit_reason],
            "regime": [row.to_dict() for row in tables.regime],
            "tag": [row.to_dict() for row in tables.tag],
            "funding": [
                {"pair": pair, "trades": n, "funding": paid} for pair, n, paid in tables.funding
            ],
        },
        "monthly_returns": _by_date(monthly_returns(result, curve), "%Y-%m"),
        "daily_equity": _by_date(daily_equity(result, curve), "%Y-%m-%d"),
        "trades": {"count": len(result.trades), "detail": "trades.json", "table": "trades.csv"},
    }
    cleaned: dict[str, Any] = plain(document)
    return cleaned


def trade_records(result: BacktestResult) -> list[dict[str, Any]]:
    """Every trade, fills included, as JSON-ready values, in id order (trades.json)."""
    masked: dict[str, str] = {}  # within one batch of the secrets, as `mask` itself keeps
    with masking_batch():
        return [trade_record(t, masked) for t in sorted(result.trades, key=lambda t: t.id)]


def results_json(
    result: BacktestResult,
    metrics: Metrics,
    tables: Breakdowns | None = None,
    curve: pd.Series | None = None,
) -> str:
    with masking_batch():
        document = results_document(result, metrics, tables, curve)
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)


# trade_record makes its keys in sorted order: written as they are, they are sorted
_ONE_LINE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False)


def trades_json(result: BacktestResult) -> str:
    """A JSON array of every trade, one trade a line: small to diff, easy to stream."""
    return _trades_json_text(trade_records(result))


def _trades_json_text(records: list[dict[str, Any]]) -> str:
    lines = [_ONE_LINE.encode(record) for record in records]
    return "[\n" + ",\n".join(lines) + ("\n]\n" if lines else "]\n")


_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # first characters a spreadsheet would run


def _cell(value: Any) -> str:
    """A CSV cell of a JSON-ready (`plain`) value; text that a spreadsheet would run as a
    formula gets a leading quote. A list (a trade's tags) becomes its items separated by
    spaces."""
    kind = type(value)  # the usual kinds first: a trade file holds tens of thousands
    if kind is float:
        return repr(value)
    if kind is str:
        text: str = value
        return "'" + text if text[:1] in _FORMULA else text
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    if isinstance(value, str):
        return "'" + value if value[:1] in _FORMULA else value
    return repr(value) if isinstance(value, float) else str(value)


def trades_csv(result: BacktestResult) -> str:
    return _trades_csv_text(trade_records(result))


def _trades_csv_text(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TRADE_COLUMNS)
    with masking_batch():
        writer.writerows(
            [
                repr(value) if type(value) is float else _cell(value)
                for value in map(record.__getitem__, TRADE_COLUMNS)
            ]
            for record in records
        )
    return buffer.getvalue()


def _writer(data: bytes) -> Callable[[BinaryIO], object]:
    return lambda handle: handle.write(data)


def write_reports(
    result: BacktestResult,
    metrics: Metrics,
    directory: Path,
    *,
    detail: bool = False,
    progress: Progress | None = None,
    tables: Breakdowns | None = None,
) -> dict[str, Path]:
    """Write the files into `directory` (created if needed); returns them by kind. With
    `detail`, a page per traded pair too (pairs/<PAIR>.html: its full chart and trades)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    traded = sorted({t.pair for t in result.trades}) if detail else []
    steps = 4 + len(traded)
    done = 0

    def step() -> None:
        nonlocal done
        if progress:
            progress("reports", done, steps)
        done += 1

    written: dict[str, Path] = {}
    tables = tables or breakdowns(result)
    curve = equity_curve(result)  # once, for results.json and the page

    def write(kind: str, path: Path, text: str) -> None:
        # every value in `text` is masked where it was made (plain, trade_record, esc)
        atomic_write(path, _writer(text.encode("utf-8")))
        written[kind] = path

    with masking_batch():  # the secrets read once for every value of every file
        step()
        summary = results_json(result, metrics, tables, curve)
        write("json", directory / "results.json", summary + "\n")
        step()
        records = trade_records(result)
        write("trades", directory / "trades.json", _trades_json_text(records))
        step()
        write("csv", directory / "trades.csv", _trades_csv_text(records))
        del records
        for pair in traded:
            step()
            page = directory / PAIR_PAGES / pair_page_name(pair)
            page.parent.mkdir(exist_ok=True)
            write(f"pair {pair}", page, render_pair_page(result, pair))
        step()
        page_text = render_html(result, metrics, detail=detail, tables=tables, curve=curve)
        write("html", directory / "report.html", page_text)
    if progress:
        progress("reports", steps, steps)
    return written
