"""`kinetic-rules download`: candles (and, for futures, funding and mark prices) from
the exchange into the store, with a bar per series on a terminal.

A failed series keeps what it fetched; the others go on, and the summary says which failed.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kinetic_rules.cli.console import console, simple_table, split_commas
from kinetic_rules.errors import ConfigError, KineticError

if TYPE_CHECKING:  # the rest is imported where used, so that `--help` stays fast
    from rich.progress import TaskID

    from kinetic_rules.data.download import SeriesOutcome
    from kinetic_rules.data.store import CandleStore


class _ProgressView:
    """Per-series bars on a terminal; one line per finished series otherwise."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.err = console(stderr=True)
        self.quiet = quiet
        self.live = not quiet and self.err.is_terminal
        self.bars = Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=self.err,
            disable=not self.live,
        )
        self.tasks: dict[tuple[str, str], TaskID] = {}
        self.outcomes: list[SeriesOutcome] = []

    def start(self, pair: str, timeframe: str, total: int) -> None:
        self.tasks[(pair, timeframe)] = self.bars.add_task(f"{pair} {timeframe}", total=total)

    def advance(self, pair: str, timeframe: str, done: int) -> None:
        self.bars.update(self.tasks[(pair, timeframe)], completed=done)

    def finish(self, pair: str, timeframe: str, outcome: SeriesOutcome) -> None:
        task = self.tasks[(pair, timeframe)]
        self.bars.update(task, completed=outcome.requested if not outcome.error else None)
        self.outcomes.append(outcome)
        if not self.live and not self.quiet:
            self.err.print(f"{pair} {timeframe}: {_outcome_text(outcome)}", markup=False)

    def note(self, message: str) -> None:
        if not self.quiet:
            self.err.print(message, markup=False)


def run_download(args: argparse.Namespace) -> int:
    from kinetic_rules.cli.outputs import check_output_dir
    from kinetic_rules.data.download import download
    from kinetic_rules.data.exchange import create_exchange, ensure_reachable
    from kinetic_rules.data.futures_store import FuturesStore
    from kinetic_rules.data.store import CandleStore, resolve_data_dir
    from kinetic_rules.data.timerange import parse_timerange

    check_output_dir(resolve_data_dir(args.data), "--data")
    store = CandleStore(resolve_data_dir(args.data))
    pairs, timeframes = split_commas(args.pairs), split_commas(args.timeframes)
    start, end = parse_timerange(args.timerange) if args.timerange else (None, None)
    if not 1 <= args.days <= 36_500:  # a hundred years; more would overflow the dates
        raise ConfigError("--days must be from 1 to 36500")
    futures = any(":" in p for p in pairs)
    exchange = create_exchange(args.exchange, api_url=args.exchange_url, futures=futures)
    ensure_reachable(exchange)
    view = _ProgressView(args.quiet)
    failure: KineticError | None = None
    extras = None if args.candles_only else FuturesStore(store.root)
    markets = 0
    with view.bars:
        try:
            markets = download(
                exchange,
                store,
                pairs,
                timeframes,
                start=start,
                end=end,
                days=args.days,
                progress=view,
                futures=extras,
            ).markets
        except KineticError as error:
            failure = error
    _print_download_summary(view.outcomes, store)
    if extras is not None and markets:
        console().print(
            f"market rules of {markets} pair{'s' if markets != 1 else ''} saved in "
            f"{extras.markets_path(exchange.id)}",
            markup=False,
        )
    if failure is not None:
        raise failure
    return 0


def _outcome_text(o: SeriesOutcome) -> str:
    if o.error:
        return f"failed after {o.added:,} new {o.what} (kept): {o.error}"
    if o.requested == 0:
        return "up to date"
    text = f"+{o.added:,} {o.what} in {o.requests} request{'s' if o.requests != 1 else ''}"
    if o.absent:
        text += f"; {o.absent:,} not available on the exchange"
    return text


def _print_download_summary(outcomes: list[SeriesOutcome], store: CandleStore) -> None:
    if not outcomes:
        return
    out = console()
    out.print(f"store: {store.root}", markup=False)
    table = simple_table("pair", "timeframe", "result")
    for o in outcomes:
        table.add_row(o.pair, o.timeframe, _outcome_text(o))
    out.print(table)
    for o in outcomes:
        for warning in o.warnings:
            out.print(f"{o.pair} {o.timeframe}: {warning}", markup=False)
