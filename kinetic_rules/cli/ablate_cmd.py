"""`kinetic-rules ablate`: the backtest with each named part switched off in turn."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kinetic_rules.cli.options import WARMUP_HELP, add_gaps_flag, candle_request
from kinetic_rules.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from kinetic_rules.research.ablation import AblationResult

DEFAULT_REPORT = Path("user_data/ablation")


def register(commands: argparse._SubParsersAction[Any]) -> None:
    ablate = commands.add_parser(
        "ablate",
        help="what each entry/exit condition, protection, take-profit and sizing rule "
        "contributes: the backtest again without each",
        description="Backtest a strategy as written, then once with each named part switched "
        "off (an entry condition becomes true; an exit condition, protection, take-profit, "
        "trailing rule or cooldown is removed; the sizing becomes the default), and print "
        "how every metric changes. `ablation:` in the file pins parts and groups them into "
        "features (see docs/research.md, Ablation).",
    )
    ablate.add_argument("strategy", type=Path, metavar="FILE", help="strategy YAML file")
    ablate.add_argument("--data", metavar="DIR", help="candle store (default: ./user_data/data)")
    ablate.add_argument(
        "--pairs", nargs="+", default=[], metavar="PAIR", help="pairs to trade (as backtest)"
    )
    ablate.add_argument("--timerange", metavar="A-B", help="trade from A to B, as backtest")
    ablate.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a param in every run, checked against its bounds (repeatable)",
    )
    ablate.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME,…",
        help="switch off only these parts or groups (an address such as entry.long.momentum, "
        "or a name that only one part has: momentum); repeatable",
    )
    ablate.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run the variants in N local processes (default 1: one after another)",
    )
    ablate.add_argument(
        "--report",
        metavar="DIR",
        type=Path,
        help=f"write ablation.json, ablation.csv and ablation.html here (default {DEFAULT_REPORT})",
    )
    ablate.add_argument("--exchange", help="exchange of the stored candles (default: the file's)")
    add_gaps_flag(ablate)
    ablate.add_argument("--warmup", metavar="DURATION", help=WARMUP_HELP)
    ablate.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    ablate.set_defaults(handler=run_ablate_command)


def run_ablate_command(args: argparse.Namespace) -> int:
    from kinetic_rules.cli.outputs import check_output_dir

    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give 1 or more processes")
    if not args.strategy.exists():
        raise ConfigError(f"{args.strategy}: no such file")
    folder = args.report or DEFAULT_REPORT
    check_output_dir(folder, "--report")  # before the work: never lose a long run
    only = [name.strip() for text in args.only for name in text.split(",")]
    if any(not name for name in only):
        raise ConfigError(f"--only {','.join(args.only)}: an empty name; separate names by commas")
    request = candle_request(args)
    from kinetic_rules.cli.progress import Phases
    from kinetic_rules.research.ablation import run_ablation
    from kinetic_rules.research.ablation_report import write_ablation

    with Phases(live=False if args.quiet else None) as phases:
        progress = None if args.quiet else phases
        result = run_ablation(request, only, args.workers, progress)
        written = write_ablation(result, folder)
    from rich.console import Console

    print_table(result, Console(soft_wrap=False))
    for path in written.values():
        print(f"wrote {path}", file=sys.stderr)
    return 0


def print_table(result: AblationResult, console: Console) -> None:
    """The baseline's figures, then each variant's change from them, then what each kind
    of part was switched off to."""
    from rich.table import Table

    from kinetic_rules.research.ablation_report import COLUMNS, TERMINAL, cells

    titles = {key: title + (" %" if unit == "ratio" else "") for key, title, unit in COLUMNS}
    table = Table(title=f"Ablation: {result.strategy_name} (changes from the baseline)")
    table.add_column("switched off", no_wrap=True)
    for key in TERMINAL:
        table.add_column(titles[key], justify="right")
    for outcome in result.outcomes:
        label = outcome.variant.label
        if outcome.error is not None:
            table.add_row(label, "could not run (below)")
        else:
            table.add_row(label, *cells(outcome, result.baseline, TERMINAL, signs=False))
    console.print(table)
    meanings = {v.kind: v.switched_off for v in (o.variant for o in result.outcomes[1:])}
    for kind, words in meanings.items():
        if kind != "group":
            console.print(f"  {kind}: {words}", highlight=False)
    for outcome in result.outcomes[1:]:
        if outcome.variant.kind == "group":
            parts = ", ".join(outcome.variant.addresses)
            console.print(f"  group {outcome.variant.label}: {parts}", highlight=False)
    for note in result.baseline.notes:
        console.print(f"note: {note}", highlight=False)
    for outcome in result.outcomes:
        if outcome.error is not None:
            console.print(
                f"{outcome.variant.label} could not run: {outcome.error}", highlight=False
            )
    console.print(
        "% columns: the baseline in percent, the other rows' change in percentage points. "
        "Every metric is in ablation.csv and ablation.html."
    )
