"""`kinetic-rules data import`, `kinetic-rules data list` and `kinetic-rules download`.

Reports go to stdout, progress bars and retry notes to stderr; progress is drawn only
on a terminal and never with --quiet. Exit codes: 0 done, 1 some files were rejected
(the others were imported), 2 a user or exchange error (nothing half-written).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kinetic_rules.cli.console import console, simple_table, split_commas
from kinetic_rules.cli.download_cmd import run_download
from kinetic_rules.cli.progress import Phases
from kinetic_rules.errors import ConfigError

if TYPE_CHECKING:  # the rest is imported where used, so that `--help` stays fast
    from rich.console import Console
    from rich.table import Table

    from kinetic_rules.data.futures_store import FuturesStore
    from kinetic_rules.data.importers import FileOutcome
    from kinetic_rules.data.store import CandleStore, StoredSeries

# kinetic_rules.data.store.DATA_ENV and data.download.DEFAULT_DAYS, without importing them
DATA_ENV = "KINETIC_RULES_DATA"
DEFAULT_DAYS = 30

ESTIMATE_NOTE = "* estimated as volume × close: the source had no quote volume"


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the data commands; each sets `handler` to a function(args) -> exit code."""
    data = commands.add_parser(
        "data", help="import and list stored candles", description="Manage the local candle store."
    )
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    imp = sub.add_parser(
        "import",
        help="import candle files: exchange kline CSV/zip, freqtrade feather/json",
        description="Validate candle files and add them to the store. Pair and timeframe come "
        "from the file names (BTCUSDT-1h.csv.gz, BTC_USDT-5m.feather) unless given.",
    )
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or directories")
    imp.add_argument("--exchange", default="binance", help="exchange the data is from (binance)")
    imp.add_argument("--pair", help="pair of every file, e.g. BTC/USDT (default: from file names)")
    imp.add_argument("--timeframe", help="timeframe of every file, e.g. 5m (default: file names)")
    imp.add_argument(
        "--market",
        choices=("spot", "futures"),
        help="what the files hold where their names do not say (the exchange's kline files); "
        "spot and futures candles of one pair are never stored together",
    )
    imp.add_argument(
        "--drop-bad-rows",
        action="store_true",
        help="import a file without its invalid rows instead of rejecting it",
    )
    imp.add_argument(
        "--accept-price-jump",
        action="store_true",
        help="import a file even where its prices jump against the stored series "
        "(checked to catch a file of another pair or in another price unit)",
    )
    imp.add_argument(
        "--mark",
        action="store_true",
        help="the kline files hold mark prices (automatic under a markPriceKlines folder)",
    )
    imp.add_argument("--dry-run", action="store_true", help="validate and report; store nothing")
    _store_flags(imp)
    imp.set_defaults(handler=run_import)

    rules = sub.add_parser(
        "import-markets",
        help="import market rules (tick size, amount step, minimum order value)",
        description="Store each market's tick size, amount step and minimum order value for "
        "backtests: our markets JSON, or the exchange's exchangeInfo answer saved to a file.",
    )
    rules.add_argument("file", type=Path, metavar="FILE", help="markets JSON or exchangeInfo")
    rules.add_argument("--exchange", default="binance", help="exchange the rules are from")
    _store_flags(rules)
    rules.set_defaults(handler=run_import_markets)

    show = sub.add_parser(
        "list",
        help="show stored pairs, timeframes, ranges and gaps",
        description="Show what the store holds.",
    )
    show.add_argument("--exchange", help="only this exchange")
    show.add_argument("--pairs", nargs="+", metavar="PAIR", help="only these pairs")
    show.add_argument("--timeframes", nargs="+", metavar="TF", help="only these timeframes")
    show.add_argument("--format", choices=("text", "json"), default="text")
    _store_flags(show, quiet=False)
    show.set_defaults(handler=run_list)

    dl = commands.add_parser(
        "download",
        help="download candles through ccxt, only what the store is missing",
        description="Download closed candles from an exchange into the store. Without "
        f"--timerange: the last {DEFAULT_DAYS} days, and everything since the stored data ends.",
    )
    dl.add_argument("--exchange", default="binance", help="ccxt exchange id (binance)")
    dl.add_argument(
        "--pairs",
        nargs="+",
        required=True,
        metavar="PAIR",
        help="pairs such as BTC/USDT ETH/USDT (or comma-separated)",
    )
    dl.add_argument(
        "--timeframes",
        nargs="+",
        default=["5m"],
        metavar="TF",
        help="timeframes such as 5m 1h 1d (or comma-separated; default 5m)",
    )
    dl.add_argument("--timerange", help="START-END as YYYYMMDD-YYYYMMDD; either side may be empty")
    dl.add_argument(
        "--days",
        type=int,
        default=DEFAULT_DAYS,
        help=f"without --timerange: how many days back (default {DEFAULT_DAYS})",
    )
    dl.add_argument(
        "--candles-only",
        action="store_true",
        help="download candles only: no market rules, and for futures markets no funding "
        "rates or mark-price candles",
    )
    dl.add_argument("--exchange-url", help=argparse.SUPPRESS)  # tests: a local stand-in
    _store_flags(dl)
    dl.set_defaults(handler=run_download)


def _store_flags(parser: argparse.ArgumentParser, *, quiet: bool = True) -> None:
    parser.add_argument(
        "--data",
        metavar="DIR",
        help=f"candle store directory (default ${DATA_ENV} or ./user_data/data)",
    )
    if quiet:
        parser.add_argument(
            "--quiet", "-q", action="store_true", help="print problems and the final summary only"
        )


# -- data import ---------------------------------------------------------------------------


def run_import(args: argparse.Namespace) -> int:
    from kinetic_rules.cli.outputs import check_output_dir
    from kinetic_rules.data.futures_import import is_funding_file, is_mark_file
    from kinetic_rules.data.futures_store import FuturesStore
    from kinetic_rules.data.importers import expand_paths
    from kinetic_rules.data.store import CandleStore, resolve_data_dir

    root = resolve_data_dir(args.data)
    if not args.dry_run:
        check_output_dir(root, "--data")
    futures = FuturesStore(root)
    out = console()
    files = expand_paths(list(args.paths))
    funding = [f for f in files if is_funding_file(f)]
    mark = [f for f in files if f not in funding and (args.mark or is_mark_file(f))]
    candles = [f for f in files if f not in funding and f not in mark]
    if not files:
        raise ConfigError(f"no candle files found in {', '.join(str(p) for p in args.paths)}")
    rejected = 0
    for group, store, kind in ((candles, CandleStore(root), ""), (mark, futures.mark, "mark ")):
        if group:
            rejected += _import_candles(args, group, store, kind, out)
    if funding:
        rejected += _import_funding(args, funding, futures, out)
    return 1 if rejected else 0


def _import_funding(
    args: argparse.Namespace, paths: list[Path], store: FuturesStore, out: Console
) -> int:
    from kinetic_rules.data.candles import format_time
    from kinetic_rules.data.futures_import import import_funding

    outcomes, written = import_funding(
        paths, store, exchange=args.exchange, pair=args.pair, dry_run=args.dry_run
    )
    for o in outcomes:
        if o.error:
            out.print(f"✗ {o.label} ({o.pair} funding): rejected: {o.error}", markup=False)
        elif not args.quiet:
            out.print(f"✓ {o.label} ({o.pair} funding): {o.rows:,} funding times", markup=False)
    if written and not args.quiet:
        table = simple_table("pair", "funding times added", "stored", "range")
        for w in written:
            span = f"{format_time(w.first.value)} .. {format_time(w.last.value)}"
            table.add_row(w.pair, f"{w.added:,}", f"{w.stored:,}", span)
        out.print(table)
    rejected = sum(1 for o in outcomes if o.error)
    verb = "checked" if args.dry_run else "imported"
    tail = f"; {rejected} rejected (none of them stored)" if rejected else ""
    out.print(
        f"{verb} {len(outcomes) - rejected} of {len(outcomes)} funding files{tail}", markup=False
    )
    return rejected


def run_import_markets(args: argparse.Namespace) -> int:
    from kinetic_rules.data.futures_import import read_markets_file
    from kinetic_rules.data.futures_store import FuturesStore
    from kinetic_rules.data.store import resolve_data_dir

    store = FuturesStore(resolve_data_dir(args.data))
    rules = read_markets_file(args.file)
    if not rules:
        raise ConfigError(f"{args.file}: holds no markets")
    held = store.write_markets(args.exchange, rules)
    out = console()
    if not args.quiet:
        table = simple_table("pair", "tick", "amount step", "min order value")
        for pair, r in sorted(rules.items()):
            table.add_row(pair, f"{r.tick_size:g}", f"{r.amount_step:g}", f"{r.min_notional:g}")
        out.print(table)
    out.print(
        f"imported the rules of {len(rules)} markets; {held} stored for {args.exchange} in "
        f"{store.markets_path(args.exchange)}",
        markup=False,
    )
    return 0


def _import_candles(
    args: argparse.Namespace, paths: list[Path], store: CandleStore, kind: str, out: Console
) -> int:
    from kinetic_rules.data.importers import import_paths

    def show(outcome: FileOutcome) -> None:
        if args.quiet and not outcome.rejected and not _has_warnings(outcome):
            return
        outcome.timeframe = kind + outcome.timeframe
        for line in _file_lines(outcome):
            out.print(line, markup=False)

    # Lines, never a redrawn bar: each file's outcome is printed as it is checked.
    with Phases(live=False) as phases:
        summary = import_paths(
            paths,
            store,
            exchange=args.exchange,
            pair=args.pair,
            timeframe=args.timeframe,
            market=args.market,
            drop_bad_rows=args.drop_bad_rows,
            dry_run=args.dry_run,
            accept_price_jump=args.accept_price_jump,
            on_file=show,
            progress=None if args.quiet else phases,
        )
    rejected = len(summary.rejected)
    if summary.written and not args.quiet:
        out.print(f"store: {store.root}", markup=False)
        table = simple_table("pair", "timeframe", "added", "changed", "stored", "range", "gaps")
        totals: dict[tuple[str, str], tuple[int, int, StoredSeries]] = {}
        for result in summary.written:  # a series written in several steps is one row
            key = (result.series.pair, result.series.timeframe)
            added, replaced, _ = totals.get(key, (0, 0, result.series))
            totals[key] = (added + result.added, replaced + result.replaced, result.series)
        for added, replaced, s in totals.values():
            table.add_row(
                s.pair,
                s.timeframe,
                f"{added:,}",
                f"{replaced:,}",
                f"{s.count:,}",
                _range(s),
                _gaps(s),
            )
        out.print(table)
    verb = "checked" if args.dry_run else "imported"
    done = len(summary.files) - rejected
    tail = f"; {rejected} rejected (none of them stored)" if rejected else ""
    what = f"{kind}candle files" if kind else "files"
    out.print(f"{verb} {done} of {len(summary.files)} {what}{tail}", markup=False)
    return rejected


def _has_warnings(outcome: FileOutcome) -> bool:
    return bool(outcome.report and outcome.report.issues) or outcome.empty


def _file_lines(outcome: FileOutcome) -> list[str]:
    what = f"{outcome.label} ({outcome.pair} {outcome.timeframe})"
    if outcome.error:
        return [f"✗ {what}: rejected: {outcome.error}"]
    report = outcome.report
    assert report is not None
    if report.fatal:
        head = f"✗ {what}: rejected, {report.rows_read:,} rows read"
        lines = [head, *("  " + line for line in report.render_lines())]
        if any(i.fatal and i.kind != "price_seam" for i in report.issues):
            lines.append(
                "  (fix the file, or pass --drop-bad-rows to import it without the bad rows)"
            )
        return lines
    if report.candles_kept == 0:
        return [f"- {what}: no candles in the file; nothing to import"]
    head = f"✓ {what}: {report.candles_kept:,} candles"
    return [head, *("  " + line for line in report.render_lines())]


# -- data list -----------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    from kinetic_rules.data.candles import format_time
    from kinetic_rules.data.store import CandleStore, resolve_data_dir

    store = CandleStore(resolve_data_dir(args.data))
    series, problems = store.listing()
    series = _chosen(args, series)
    out = console()
    if args.format == "json":
        print(json.dumps([_series_json(s) for s in series], indent=2))
        return 0
    for problem in problems:
        out.print(f"warning: {problem}", markup=False)
    futures = _futures_lines(args, store.root)
    if not series and futures:
        out.print(f"store: {store.root}", markup=False)
        out.print(futures)
        return 0
    if not series:
        out.print(
            f"no candles stored in {store.root}; add some with `kinetic-rules data import "
            "PATH` or `kinetic-rules download`",
            markup=False,
        )
        return 0
    out.print(f"store: {store.root}", markup=False)
    columns = ("exchange", "pair", "market", "timeframe", "first", "last", "candles", "gaps")
    table = simple_table(*columns, "quote volume")
    for s in series:
        table.add_row(
            s.exchange,
            s.pair,
            s.market or "?",
            s.timeframe,
            format_time(s.first.value),
            format_time(s.last.value),
            f"{s.count:,}",
            _gaps(s),
            "estimated*" if s.quote_volume_estimated else "exchange",
        )
    out.print(table)
    if any(s.quote_volume_estimated for s in series):
        out.print(ESTIMATE_NOTE, markup=False)
    if futures is not None:
        out.print(futures)
    return 0


def _chosen(args: argparse.Namespace, series: list[StoredSeries]) -> list[StoredSeries]:
    """The series `data list`'s --exchange, --pairs and --timeframes select."""
    from kinetic_rules.data.pairs import normalize_pair

    if args.exchange:
        series = [s for s in series if s.exchange == args.exchange]
    if args.pairs:
        wanted = {normalize_pair(p) for p in split_commas(args.pairs)}
        series = [s for s in series if s.pair in wanted]
    if args.timeframes:
        tfs = set(split_commas(args.timeframes))
        series = [s for s in series if s.timeframe in tfs]
    return series


def _futures_lines(args: argparse.Namespace, root: Path) -> Table | None:
    """Stored funding rates and mark-price candles, one row a series; None when none."""
    from kinetic_rules.data.candles import format_time
    from kinetic_rules.data.futures_store import FuturesStore

    futures = FuturesStore(root)
    marks, _ = futures.mark.listing()
    rows = [
        (s.exchange, s.pair, f"mark {s.timeframe}", s.first, s.last, f"{s.count:,} candles")
        for s in _chosen(args, marks)
    ]
    folders = sorted(p for p in (root / "funding").glob("*") if p.is_dir())
    for exchange in (f.name for f in folders):
        for pair in futures.funding_pairs(exchange):
            held = futures.read_funding(exchange, pair)
            if held is None or not len(held) or not _funding_chosen(args, exchange, pair):
                continue
            count = f"{len(held):,} funding times"
            rows.append((exchange, pair, "funding", held.index[0], held.index[-1], count))
    if not rows:
        return None
    table = simple_table("exchange", "pair", "series", "first", "last", "held")
    for exchange, pair, kind, first, last, count in sorted(rows, key=lambda r: r[:3]):
        table.add_row(
            exchange, pair, kind, format_time(first.value), format_time(last.value), count
        )
    return table


def _funding_chosen(args: argparse.Namespace, exchange: str, pair: str) -> bool:
    """Funding series have no timeframe: --timeframes (candles only) leaves them out."""
    from kinetic_rules.data.pairs import normalize_pair

    if args.timeframes or (args.exchange and exchange != args.exchange):
        return False
    return not args.pairs or pair in {normalize_pair(p) for p in split_commas(args.pairs)}


def _series_json(s: StoredSeries) -> dict[str, Any]:
    return {
        "exchange": s.exchange,
        "pair": s.pair,
        "market": s.market,
        "timeframe": s.timeframe,
        "first": s.first.isoformat(),
        "last": s.last.isoformat(),
        "candles": s.count,
        "gaps": s.gaps,
        "missing_candles": s.missing,
        "quote_volume_estimated": s.quote_volume_estimated,
        "file": str(s.path),
    }


def _range(s: StoredSeries) -> str:
    from kinetic_rules.data.candles import format_time

    return f"{format_time(s.first.value)} .. {format_time(s.last.value)}"


def _gaps(s: StoredSeries) -> str:
    return "-" if not s.gaps else f"{s.gaps:,} ({s.missing:,} candles missing)"
