"""`kinetic-rules trades`: list, filter and export the trades a live or paper run stored.

The table is for people; JSON is the exact serialization the store round-trips (so an
export can be read back with `deserialize_trades`); CSV is one row per trade for
spreadsheets. --output writes the file whole or not at all.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kinetic_rules.cli.console import console
from kinetic_rules.cli.flags import whole_number
from kinetic_rules.errors import ConfigError

if TYPE_CHECKING:  # imported where used, so that `--help` stays fast
    import pandas as pd
    from rich.console import Console

    from kinetic_rules.engine.model import Trade

DB_ENV = "KINETIC_RULES_DB"  # kinetic_rules.persist.connect.DB_ENV, without importing SQLAlchemy

CSV_COLUMNS = (
    "id", "pair", "side", "regime", "signal_time", "entry_time", "entry_price", "amount",
    "stake", "leverage", "margin", "liquidation_price", "tags", "initial_stop", "stop",
    "exit_time", "exit_price", "exit_reason", "profit", "profit_ratio", "fees",
)  # fmt: skip


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add `trades`; it sets `handler` to a function(args) -> exit code."""
    cmd = commands.add_parser(
        "trades",
        help="list, filter and export stored trades (table, JSON or CSV)",
        description="Show the trades a run stored in its database. Filters combine: "
        "--from/--to bound the entry time (from inclusive, to exclusive, UTC).",
    )
    cmd.add_argument(
        "--db",
        metavar="URL",
        help=f"database URL (default ${DB_ENV} or sqlite:///user_data/trades.sqlite)",
    )
    cmd.add_argument("--pair", help="only this pair, e.g. SOL/USDT")
    cmd.add_argument("--tag", help="only trades carrying this entry tag (see entry.tags)")
    when = "TIME (UTC unless it says otherwise), e.g. 2024-03-01 or 2024-03-01T10:05"
    cmd.add_argument("--from", dest="start", type=_time, metavar="TIME",
                     help=f"entered at or after {when}")  # fmt: skip
    cmd.add_argument("--to", dest="end", type=_time, metavar="TIME",
                     help="entered before TIME")  # fmt: skip
    cmd.add_argument("--outcome", choices=("win", "loss", "open"),
                     help="win: closed with profit > 0; loss: closed otherwise")  # fmt: skip
    cmd.add_argument("--strategy", metavar="NAME", help="only trades of this strategy")
    cmd.add_argument("--mode", choices=("paper", "live", "replay"), help="only this mode")
    cmd.add_argument("--limit", type=_positive, metavar="N", help="only the N most recent")
    cmd.add_argument("--format", choices=("table", "json", "csv"), default="table",
                     help="output format (default table)")  # fmt: skip
    cmd.add_argument("--output", "-o", type=Path, metavar="FILE",
                     help="write to FILE (atomically) instead of standard output")  # fmt: skip
    cmd.set_defaults(handler=run_trades)


def _time(text: str) -> pd.Timestamp:
    """A UTC time from the command line, ISO 8601 or compact; never guessed."""
    from kinetic_rules.data.timerange import parse_time

    try:
        return parse_time(text)
    except ConfigError as unreadable:
        raise argparse.ArgumentTypeError(str(unreadable)) from None


_positive = whole_number(1, 1_000_000_000)


def run_trades(args: argparse.Namespace) -> int:
    from rich.console import Console

    from kinetic_rules.cli.outputs import check_output_file
    from kinetic_rules.data.atomic import atomic_write
    from kinetic_rules.data.pairs import normalize_pair
    from kinetic_rules.persist import TradeStore, serialize_trades

    if args.start is not None and args.end is not None and args.start >= args.end:
        raise ConfigError(f"--from {args.start} is not before --to {args.end}")
    pair = normalize_pair(args.pair) if args.pair else None
    if args.output is not None:  # before the database is read
        check_output_file(args.output, "--output")
    with TradeStore(args.db, create=False, read_only=True) as store:
        trades = store.trades(
            pair=pair, start=args.start, end=args.end, outcome=args.outcome,
            strategy=args.strategy, mode=args.mode, limit=args.limit, tag=args.tag,
        )  # fmt: skip
    if args.format == "json":
        text = serialize_trades(trades) + "\n"
    elif args.format == "csv":
        text = trades_csv(trades)
    else:
        text = ""
    if args.output is None:
        if args.format == "table":
            print_table(trades, console())
        else:
            sys.stdout.write(text)
        return 0
    if args.format == "table":
        buffer = io.StringIO()
        print_table(trades, Console(file=buffer, width=200, no_color=True, highlight=False))
        text = buffer.getvalue()
    path: Path = args.output
    data = text.encode()
    atomic_write(path, lambda handle: handle.write(data))
    print(f"wrote {len(trades)} trade(s) to {path}", file=sys.stderr)
    return 0


def _price(value: float | None) -> str:
    return "" if value is None else f"{value:.8g}"


def _when(value: pd.Timestamp | None) -> str:
    if value is None:
        return ""
    fmt = "%Y-%m-%d %H:%M:%S" if value.second or value.microsecond else "%Y-%m-%d %H:%M"
    return value.strftime(fmt)


def print_table(trades: list[Trade], console: Console) -> None:
    """One row per trade, then a one-line summary; strings from the database are shown
    as plain text (a pair or reason can never be read as rich markup)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    if not trades:
        console.print("No trades match.")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in ("ID", "Pair", "Side", "Entry time", "Entry", "Exit time", "Exit"):
        table.add_column(header, no_wrap=True, justify="right" if header in ("ID",) else "left")
    table.add_column("Profit", justify="right", no_wrap=True)
    table.add_column("Profit %", justify="right", no_wrap=True)
    table.add_column("Exit reason")
    tagged = any(t.tags for t in trades)
    if tagged:
        table.add_column("Tags")
    for t in trades:
        profit = "" if t.is_open else f"{t.profit:+.4f}"
        ratio = "" if t.is_open else f"{t.profit_ratio * 100:+.2f}%"
        style = "" if t.is_open else ("green" if t.is_winner else "red")
        table.add_row(
            str(t.id), Text(t.pair), t.side, _when(t.entry_time), _price(t.entry_price),
            _when(t.exit_time) if t.exit_time is not None else "open", _price(t.exit_price),
            Text(profit, style=style), Text(ratio, style=style), Text(t.exit_reason or ""),
            *([Text(" ".join(t.tags))] if tagged else []),
        )  # fmt: skip
    console.print(table)
    closed = [t for t in trades if not t.is_open]
    wins = sum(t.is_winner for t in closed)
    total = math.fsum(t.profit for t in closed)
    console.print(
        f"{len(trades)} trade(s): {len(trades) - len(closed)} open, {wins} won, "
        f"{len(closed) - wins} lost; closed profit {total:+.4f}"
    )


def _cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, list):  # a trade's tags
        value = " ".join(str(v) for v in value)
    if isinstance(value, str):
        risky = value[:1] in ("=", "+", "-", "@", "\t", "\r")
        return "'" + value if risky and value not in ("-Infinity",) else value
    return repr(value) if isinstance(value, float) else str(value)


def trades_csv(trades: list[Trade]) -> str:
    from kinetic_rules.persist import trade_to_dict

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for trade in trades:
        record = trade_to_dict(trade)
        writer.writerow([_cell(record[column]) for column in CSV_COLUMNS])
    return buffer.getvalue()
