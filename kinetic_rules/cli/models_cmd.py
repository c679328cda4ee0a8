"""`kinetic-rules models`: each model's training history, in the terminal and as HTML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kinetic_rules.cli.options import candle_request
from kinetic_rules.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from kinetic_rules.backtest.model_history import ModelHistory

DEFAULT_REPORT = Path("user_data/models-report")


def register(commands: argparse._SubParsersAction[Any]) -> None:
    models = commands.add_parser(
        "models",
        help="each model's training history: windows, samples, out-of-sample accuracy, "
        "calibration and feature weights",
        description="Train (or read from the cache) every model of a strategy on the stored "
        "candles, as a backtest does, and show each retraining window: its samples, whether "
        "a model came out, its accuracy on the span it predicted, its calibration and the "
        "weight of each feature. Writes models.html (docs/models.md).",
    )
    models.add_argument("strategy", type=Path, metavar="FILE", help="strategy YAML file")
    models.add_argument("--data", metavar="DIR", help="candle store (default: ./user_data/data)")
    models.add_argument(
        "--pairs", nargs="+", default=[], metavar="PAIR", help="pairs (default: as backtest)"
    )
    models.add_argument("--timerange", metavar="A-B", help="show the retraining points from A to B")
    models.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a param, checked against its bounds (repeatable)",
    )
    models.add_argument("--exchange", help="exchange of the stored candles (default: the file's)")
    models.add_argument(
        "--report",
        metavar="DIR",
        type=Path,
        help=f"write models.html here (default {DEFAULT_REPORT}/<file name>)",
    )
    models.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    models.set_defaults(handler=run_models_command, gaps=None, warmup=None)


def run_models_command(args: argparse.Namespace) -> int:
    if not args.strategy.exists():
        raise ConfigError(f"{args.strategy}: no such file")
    from dataclasses import replace

    from kinetic_rules.backtest.model_history import collect, render
    from kinetic_rules.backtest.runner import prepare
    from kinetic_rules.cli.outputs import check_output_dir
    from kinetic_rules.cli.progress import Phases

    folder = args.report or DEFAULT_REPORT / args.strategy.stem
    check_output_dir(folder, "--report")
    request = candle_request(args)
    # every candle trains, as in a backtest; the timerange picks the windows shown
    prepared = prepare(replace(request, start=None, end=None))
    if not prepared.plan.strategy.spec.models:
        raise ConfigError(f"{args.strategy}: declares no models (see docs/models.md)")
    with Phases(live=False if args.quiet else None) as phases:
        progress = None if args.quiet else phases
        histories, notes = collect(
            prepared.plan, prepared.feed, prepared.pairs, request.start, request.end, progress
        )
    from rich.console import Console

    console = Console(soft_wrap=False)
    for history in histories:
        print_history(history, console)
    for note in notes:
        console.print(f"note: {note}", highlight=False)
    if not histories:
        console.print("no rule reads a model, or every model is switched off", highlight=False)
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "models.html"
    page.write_text(render(histories, args.strategy.name, notes))
    print(f"wrote {page}", file=sys.stderr)
    return 0


def print_history(history: ModelHistory, console: Console) -> None:
    """A compact table, one row per window; calibration and every weight are in the page."""
    import pandas as pd
    from rich.table import Table

    from kinetic_rules.backtest.model_history import percent

    table = Table(title=f"Model {history.name} ({history.kind})")
    for column in ("pair", "retrained", "samples", "up", "scored", "accuracy", "model"):
        table.add_column(column, justify="left" if column in ("pair", "model") else "right")
    for r in history.records:
        up = percent(r.positives / r.samples) if r.samples else "–"
        when = f"{pd.Timestamp(r.point, tz='UTC'):%Y-%m-%d}"
        table.add_row(
            r.pair, when, str(r.samples), up, str(r.scored), percent(r.accuracy),
            "no model" if r.problem else "trained",
        )  # fmt: skip
    console.print(table)
    for r in history.records:
        if r.problem:
            when = f"{pd.Timestamp(r.point, tz='UTC'):%Y-%m-%d %H:%M}"
            console.print(f"  {r.pair} {when}: no model: {r.problem}", highlight=False)
    weights = ", ".join(f"{f} {w:.2f}" for f, w in history.importances()[:5])
    console.print(
        f"{history.name}: out-of-sample accuracy {percent(history.accuracy())} over "
        f"{sum(r.scored for r in history.trained)} predictions; strongest features: "
        f"{weights or '–'}",
        highlight=False,
    )
