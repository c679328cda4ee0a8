"""`kinetic-rules optimize` and `kinetic-rules walkforward`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kinetic_rules.cli.options import WARMUP_HELP, add_gaps_flag, candle_request
from kinetic_rules.errors import ConfigError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("strategy", type=Path, metavar="FILE", help="strategy YAML file")
    parser.add_argument(
        "--params",
        metavar="A,B,…",
        help="params to search, comma-separated (default: every param with min and max, "
        "choices, or a true/false value)",
    )
    parser.add_argument(
        "--objective",
        default="sharpe",
        metavar="METRIC",
        help="metric to optimise: sharpe (default), sortino, calmar, total_return, "
        "profit_total, cagr, expectancy, expectancy_ratio, profit_factor, win_rate, "
        "max_drawdown, trades … (docs/research.md)",
    )
    parser.add_argument(
        "--constraint",
        action="append",
        default=[],
        metavar="RULE",
        help="a requirement on any metric, e.g. 'max_drawdown < 15%%' or 'trades >= 30' "
        "(repeatable); trials that break one never count as best",
    )
    parser.add_argument("--trials", type=int, default=100, help="trials to run (default 100)")
    parser.add_argument(
        "--sampler",
        default="tpe",
        choices=("tpe", "grid", "random", "cmaes"),
        help="how values are chosen: tpe (Bayesian, default), grid, random, cmaes",
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed, same study (default 0)")
    parser.add_argument("--data", metavar="DIR", help="candle store (default: ./user_data/data)")
    parser.add_argument("--pairs", nargs="+", default=[], metavar="PAIR", help="pairs to trade")
    parser.add_argument("--timerange", metavar="A-B", help="the span to search, e.g. 20240101-")
    parser.add_argument(
        "--study",
        metavar="URL",
        help="study database, any SQLAlchemy URL (default: "
        "sqlite:///user_data/research/<file name>.sqlite); an existing study is resumed",
    )
    parser.add_argument(
        "--new-study",
        action="store_true",
        help="delete the study of the same name in the database and start afresh",
    )
    workers = parser.add_mutually_exclusive_group()
    workers.add_argument("--workers", type=int, default=1, help="local worker processes")
    workers.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run trials on a Ray cluster: auto (started with `ray start`), HOST:PORT, or "
        "local (a private one for this run)",
    )
    parser.add_argument(
        "--report", metavar="DIR", type=Path, help="report folder (default ./user_data/research/…)"
    )
    parser.add_argument("--exchange", help="exchange of the stored candles (default: the file's)")
    add_gaps_flag(parser)
    parser.add_argument("--warmup", metavar="DURATION", help=WARMUP_HELP)
    parser.add_argument(
        "--cache-mb",
        type=int,
        metavar="MB",
        help="series each worker keeps from one trial to the next, in MB (default 512; "
        "0: none, every trial computes every series)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress display")


def register(commands: argparse._SubParsersAction[Any]) -> None:
    optimize = commands.add_parser(
        "optimize",
        help="search a strategy's declared params for the best values (Optuna)",
        description="Search the params a strategy declares, within their bounds, for the "
        "values that maximise an objective under constraints. The study is kept in a "
        "database and resumed when run again; the best values are written to a copy of the "
        "file. See docs/research.md.",
    )
    _common(optimize)
    optimize.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        help="the tuned strategy file (default: <report dir>/<file name>.optimized.yaml)",
    )
    optimize.set_defaults(handler=run_optimize_command)
    walk = commands.add_parser(
        "walkforward",
        help="optimise on rolling training windows, trade the window after each",
        description="Walk-forward validation: per window, search on the training span "
        "(without reading a candle after it), then trade the following test span with the "
        "chosen values. Reports the stitched out-of-sample equity, the values per window, "
        "in-sample vs out-of-sample metrics and overfitting measures. See docs/research.md.",
    )
    _common(walk)
    walk.add_argument("--train", required=True, metavar="DURATION", help="training span, e.g. 60d")
    walk.add_argument("--test", required=True, metavar="DURATION", help="test span, e.g. 30d")
    walk.add_argument(
        "--step", metavar="DURATION", help="how far each window moves (default: --test)"
    )
    walk.add_argument(
        "--anchored",
        action="store_true",
        help="every training span starts at the first candle (it grows) instead of moving",
    )
    walk.set_defaults(handler=run_walkforward_command)


def _options(args: argparse.Namespace) -> Any:
    from kinetic_rules.research.run import OptimizeOptions

    params = [p.strip() for p in args.params.split(",")] if args.params else None
    if params is not None and not all(params):
        raise ConfigError(f"--params {args.params}: an empty name; write names separated by ,")
    return OptimizeOptions(
        params=params,
        objective=args.objective,
        constraints=list(args.constraint),
        trials=args.trials,
        sampler=args.sampler,
        seed=args.seed,
        study_url=args.study,
        new_study=args.new_study,
        workers=args.workers,
        ray=args.ray,
        **({} if args.cache_mb is None else {"cache_mb": args.cache_mb}),
    )


class _TrialProgress:
    """Trials done with the best value so far: a rich bar on a terminal, else one plain
    line per round of trials (a log file or CI gets no redrawing)."""

    def __init__(self, objective: str, quiet: bool, stream: Any = None) -> None:
        self.objective = objective
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.live = not quiet and self.stream.isatty()
        self.label = "trials"
        self.bar: Any = None
        self.task: Any = None
        self.last = -1

    def _text(self, done: int, total: int, best: float | None) -> str:
        shown = "–" if best is None else f"{best:.4g}"
        return f"{self.label} {done}/{total}, best {self.objective} {shown}"

    def __call__(self, done: int, total: int, best: float | None, _params: Any = None) -> None:
        if self.quiet:
            return
        text = self._text(done, total, best)
        if not self.live:
            if done != self.last and (done % 8 == 0 or done == total):
                print(text, file=self.stream, flush=True)
                self.last = done
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(text, total=total)
        self.bar.update(self.task, completed=done, total=total, description=text)

    def window(self, label: str, done: int, total: int, best: float | None) -> None:
        if label + " trials" != self.label:
            self.label, self.last = label + " trials", -1
        self(done, total, best)

    def phase(self, name: str) -> None:
        if not self.quiet and not self.live:
            print(name, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def run_optimize_command(args: argparse.Namespace) -> int:
    from kinetic_rules.backtest.metrics import compute_metrics
    from kinetic_rules.cli.outputs import check_output_dir
    from kinetic_rules.research import report
    from kinetic_rules.research.backends import connect_ray
    from kinetic_rules.research.run import check_inputs, run_search
    from kinetic_rules.research.study import default_url
    from kinetic_rules.research.trials import TrialRunner, build_context
    from kinetic_rules.research.writeback import write_strategy

    options = _options(args)
    checked = check_inputs(args.strategy, options)
    request = candle_request(args)
    folder = args.report or Path("user_data/research") / args.strategy.stem
    check_output_dir(folder, "--report")
    out = args.out or folder / f"{args.strategy.stem}.optimized.yaml"
    url = options.study_url or default_url(args.strategy)
    progress = _TrialProgress(options.objective, args.quiet)
    try:
        progress.phase("loading")
        context = build_context(request)
        with connect_ray(options.ray):
            found = run_search(
                checked,
                context,
                options,
                checked.loaded.strategy.metadata.name,
                f"{request.start}..{request.end}",
                url,
                progress,
            )
        progress.phase("reports")
        best_result = TrialRunner(context, keep_series=False).backtest(found.best_values)
        best_metrics = compute_metrics(best_result)
        written = write_strategy(checked.loaded, checked.space, found.best_values, out)
        document = report.optimize_document(
            checked, found, options.objective, best_result, best_metrics, url, written
        )
        html = report.optimize_html(checked, found, options.objective, best_result)
        paths = report.write(folder, document, html)
    finally:
        progress.close()
    _print_optimize(found, options.objective, checked)
    for path in [written, *paths]:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _print_optimize(found: Any, objective: str, checked: Any) -> None:
    from kinetic_rules.research.report import fmt_metric

    best = found.result.best
    print(f"{checked.loaded.strategy.metadata.name}: {len(found.result.trials)} trials finished")
    if best is None:
        print("no trial met the constraints: the file's values are kept")
        return
    print(f"best trial #{best.number}: {objective} {fmt_metric(objective, best.value)}")
    for name, value in found.best_values.items():
        print(f"  {name} = {value:.6g}" if isinstance(value, float) else f"  {name} = {value}")
    before = fmt_metric(objective, found.baseline.values.get(objective))
    print(f"the file's own values: {objective} {before} (in sample; see walkforward)")


def run_walkforward_command(args: argparse.Namespace) -> int:
    from kinetic_rules.cli.outputs import check_output_dir
    from kinetic_rules.research import report
    from kinetic_rules.research.backends import connect_ray
    from kinetic_rules.research.run import check_inputs
    from kinetic_rules.research.study import default_url
    from kinetic_rules.research.walkforward import parse_schedule, walk_forward

    options = _options(args)
    checked = check_inputs(args.strategy, options)
    schedule = parse_schedule(args.train, args.test, args.step, args.anchored)
    request = candle_request(args)
    folder = args.report or Path("user_data/research") / f"{args.strategy.stem}-walkforward"
    check_output_dir(folder, "--report")
    url = options.study_url or default_url(args.strategy)
    progress = _TrialProgress(options.objective, args.quiet)
    try:
        progress.phase("loading")
        with connect_ray(options.ray):
            result = walk_forward(checked, request, schedule, options, url, progress.window)
        progress.phase("reports")
        document = report.walkforward_document(checked, result, options.objective)
        paths = report.write(
            folder, document, report.walkforward_html(checked, result, options.objective)
        )
    finally:
        progress.close()
    from kinetic_rules.backtest.report_text import fmt_pct

    print(f"{checked.loaded.strategy.metadata.name}: {len(result.windows)} walk-forward windows")
    for w in result.windows:
        print(
            f"  {w.window.index + 1}: test {w.window.train_end:%Y-%m-%d} → "
            f"{w.window.test_end:%Y-%m-%d}  return in {fmt_pct(w.in_sample.get('total_return'))}"
            f", out {fmt_pct(w.out_of_sample.total_return)}  PBO {fmt_pct(w.pbo)}"
        )
    print(f"out-of-sample return, stitched: {fmt_pct(result.stitched_return())}")
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)
    return 0
