"""`kinetic-rules backtest` and `kinetic-rules explain`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kinetic_rules.cli.options import WARMUP_HELP, add_gaps_flag, candle_request, parse_overrides
from kinetic_rules.errors import ConfigError


def register(commands: argparse._SubParsersAction[Any]) -> None:
    backtest = commands.add_parser(
        "backtest",
        help="simulate a strategy on stored candles and report the results",
        description="Backtest a strategy on the candle store. Signals are decided on closed "
        "candles and filled at the next open; every assumption is printed and saved with "
        "the results (see docs/backtesting.md).",
    )
    backtest.add_argument("strategy", type=Path, metavar="FILE", help="strategy YAML file")
    backtest.add_argument("--data", metavar="DIR", help="candle store (default: ./user_data/data)")
    backtest.add_argument(
        "--pairs",
        nargs="+",
        default=[],
        metavar="PAIR",
        help="pairs to trade (default: the scanner's universe, market.pairs, or every stored "
        "pair quoted in the stake currency)",
    )
    backtest.add_argument(
        "--timerange",
        metavar="A-B",
        help="trade from A to B, e.g. 20240101-20240901 (earlier data still warms indicators up)",
    )
    backtest.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a param, checked against its bounds (repeatable)",
    )
    backtest.add_argument(
        "--report",
        metavar="DIR",
        type=Path,
        help="write results.json, trades.json, trades.csv and report.html here",
    )
    backtest.add_argument(
        "--report-detail",
        action="store_true",
        help="also write a page per traded pair (pairs/PAIR.html in the --report folder): "
        "its full chart with every trade marked, and every trade listed",
    )
    backtest.add_argument(
        "--export",
        choices=("signals", "trades"),
        action="append",
        default=[],
        help="signals: every named condition and verdict per candle (Parquet, per pair); "
        "trades: the trade list (CSV); written to --report DIR (default ./user_data/backtest)",
    )
    backtest.add_argument("--exchange", help="exchange of the stored candles (default: the file's)")
    add_gaps_flag(backtest)
    backtest.add_argument("--warmup", metavar="DURATION", help=WARMUP_HELP)
    backtest.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    backtest.set_defaults(handler=run_backtest_command)


def run_backtest_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from kinetic_rules.backtest.metrics import summarize
    from kinetic_rules.backtest.report_text import print_summary
    from kinetic_rules.backtest.runner import run_backtest
    from kinetic_rules.cli.process import modules_loaded

    if args.report is not None or args.export:
        from kinetic_rules.backtest.report_files import write_reports
    modules_loaded()

    if not args.strategy.exists():
        raise ConfigError(f"{args.strategy}: no such file")
    if args.report_detail and args.report is None:
        raise ConfigError("--report-detail writes into the --report folder: give --report DIR")
    report_folder = args.report or (Path("user_data/backtest") if args.export else None)
    if report_folder is not None:  # before the work: never lose a long run to a bad folder
        from kinetic_rules.cli.outputs import check_output_dir

        check_output_dir(report_folder, "--report")
    request = candle_request(args)
    from kinetic_rules.cli.progress import Phases

    with Phases(live=False if args.quiet else None) as phases:
        progress = None if args.quiet else phases
        result = run_backtest(request, progress)
        if progress:
            progress("reports", 0, 0)  # the metrics, before the files count their steps
        metrics, tables = summarize(result)  # once, for the summary and every file
        folder = args.report or (Path("user_data/backtest") if args.export else None)
        written = {}
        if folder is not None:
            detail = args.report_detail
            written = write_reports(
                result, metrics, folder, detail=detail, progress=progress, tables=tables
            )
    print_summary(result, Console(soft_wrap=False), metrics, tables)
    pages = [p for kind, p in written.items() if kind.startswith("pair ")]
    for kind, path in written.items():
        if not kind.startswith("pair "):
            print(f"wrote {path}", file=sys.stderr)
    if pages:
        print(f"wrote {len(pages)} pair page(s) in {pages[0].parent}", file=sys.stderr)
    if "signals" in args.export:
        from kinetic_rules.backtest.export import write_signals
        from kinetic_rules.backtest.runner import prepare
        from kinetic_rules.compile.evaluate import Evaluator

        assert folder is not None
        prepared = prepare(request)
        evaluator = Evaluator(prepared.plan, prepared.feed)
        signals = (evaluator.evaluate(pair) for pair in prepared.pairs)  # one pair at a time
        for path in write_signals(prepared.plan, signals, folder):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def register_explain(commands: argparse._SubParsersAction[Any]) -> None:
    explain = commands.add_parser(
        "explain",
        help="why did (or didn't) the strategy act on a pair at a candle?",
        description="Show every named condition at one candle — the values of its operands "
        "and whether it held — and the trade open then, with its stop.",
    )
    explain.add_argument("strategy", type=Path, metavar="FILE", help="strategy YAML file")
    explain.add_argument("--pair", required=True, help="e.g. SOL/USDT")
    explain.add_argument(
        "--at",
        required=True,
        metavar="TIME",
        help="the candle's open time, ISO 8601, UTC unless it says otherwise, e.g. "
        "2024-03-04T10:05; a time inside a candle explains that candle",
    )
    explain.add_argument("--data", metavar="DIR", help="candle store (default: ./user_data/data)")
    explain.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override a param"
    )
    explain.add_argument(
        "--no-trades",
        action="store_true",
        help="skip the backtest that finds the open trade (faster)",
    )
    explain.add_argument("--exchange", help="exchange of the stored candles (default: the file's)")
    add_gaps_flag(explain)
    explain.set_defaults(handler=run_explain_command)


def run_explain_command(args: argparse.Namespace) -> int:
    from kinetic_rules.backtest.explain import explain
    from kinetic_rules.backtest.runner import BacktestRequest
    from kinetic_rules.data.store import resolve_data_dir
    from kinetic_rules.data.timerange import parse_time

    at = parse_time(args.at, "--at")
    request = BacktestRequest(
        strategy=args.strategy,
        data_dir=resolve_data_dir(args.data),
        overrides=parse_overrides(args.set),
        exchange=args.exchange,
        gaps=args.gaps,
    )
    if not args.strategy.exists():
        raise ConfigError(f"{args.strategy}: no such file")
    print(explain(request, args.pair, at, trades=not args.no_trades))
    return 0
