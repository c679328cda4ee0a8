"""`kinetic-rules run`: the live runtime — paper by default, replayed from a candle store."""

from __future__ import annotations

import argparse
import gc
import logging
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kinetic_rules.cli import ui_cmd
from kinetic_rules.cli.options import WARMUP_HELP, add_gaps_flag, candle_request, parse_overrides
from kinetic_rules.cli.progress import Phases
from kinetic_rules.errors import ConfigError
from kinetic_rules.timeframes import timeframe_seconds

if TYPE_CHECKING:
    import pandas as pd

    from kinetic_rules.persist.sink import StoreSink


def register(commands: argparse._SubParsersAction[Any]) -> None:
    run = commands.add_parser(
        "run",
        help="run a strategy: paper trading by default, --live for real orders, "
        "--replay to play recorded candles",
        description="Run the live runtime at every candle close. By default it paper-trades "
        "on the exchange's live candles; --live places real orders; --replay DIR plays the "
        "candles of a candle store, one closed candle at a time, and its trades equal the "
        "backtest's on the same data. Without --pairs, the strategy's pairs or its scanner "
        "decide. See docs/live.md.",
    )
    run.add_argument("strategy", type=Path, metavar="FILE", help="strategy YAML file")
    run.add_argument("--replay", metavar="DIR", type=Path, help="a candle store to replay")
    run.add_argument(
        "--speed",
        default="max",
        metavar="max|N",
        help="replay pace: max (as fast as possible, the default) or N times real time",
    )
    mode = run.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", action="store_true", help="paper trading, no real orders (the default)"
    )
    mode.add_argument(
        "--live",
        action="store_true",
        help="real orders: keys from KINETIC_API_KEY and KINETIC_API_SECRET, after a confirmation",
    )
    run.add_argument(
        "--yes",
        action="store_true",
        help="with --live: skip the confirmation prompt (for unattended starts)",
    )
    run.add_argument(
        "--fills",
        choices=["candles", "book"],
        default="candles",
        help="paper fills: by the backtest's candle rules (the default; equals a backtest), "
        "or against the exchange's live tickers and order books",
    )
    run.add_argument(
        "--inputs",
        choices=["rest", "ws"],
        default="rest",
        help="how a session reads the best bids and asks its rules use (spread, bid, ask): "
        "REST requests at each close (the default), or pushed over the exchange's WebSocket "
        "through ccxt pro, with REST whenever the socket is down",
    )
    run.add_argument("--pairs", nargs="+", default=[], metavar="PAIR", help="pairs to trade")
    run.add_argument("--timerange", metavar="A-B", help="replay only this range (after warm-up)")
    run.add_argument("--warmup", metavar="DURATION", help="with --replay: " + WARMUP_HELP)
    run.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override a param"
    )
    run.add_argument("--exchange", help="ccxt exchange id (default: the file's market.exchange)")
    run.add_argument("--data", metavar="DIR", help="candle store the session keeps its candles in")
    run.add_argument("--exchange-url", help=argparse.SUPPRESS)  # tests: the stand-in's address
    run.add_argument(
        "--db",
        metavar="URL",
        help="where trades are kept (default: $KINETIC_RULES_DB or sqlite:///user_data/trades.sqlite)",
    )
    run.add_argument(
        "--monitor-every",
        metavar="DURATION|off",
        help="paper and live: how often open positions are checked between candle closes "
        "(tickers; futures: mark prices), for protections that close all, stops no exchange "
        "order holds and paper liquidations: 1s to 1h, or off (only at closes). Overrides "
        "the file's orders.monitor_every (default 5s). Not with --replay",
    )
    add_gaps_flag(run)
    ui_cmd.add_run_flags(run)
    run.add_argument("--quiet", "-q", action="store_true", help="only the final summary")
    run.set_defaults(handler=run_command)


def now() -> pd.Timestamp:
    """The session's clock (the bot-process tests run it in the exchange stand-in's time)."""
    import pandas as pd

    return pd.Timestamp.now(tz="UTC")


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        factor = float(text)
    except ValueError:
        factor = math.nan
    if not _SLOWEST <= factor <= _FASTEST:  # NaN fails too
        raise ConfigError(
            f"--speed {text}: write max, or a number from {_SLOWEST:g} to {_FASTEST:g} such as 60"
        )
    return factor


_SLOWEST, _FASTEST = 0.001, 1_000_000.0  # replay pace, times real time


def _monitor_every(text: str | None, plan: Any) -> float:
    """`--monitor-every 5s` → seconds; `off` (or 0) → 0, no monitor; no flag: the file's
    `orders.monitor_every` (default 5s: seed 001 watches its positions every 5 seconds)."""
    from kinetic_rules.spec.types import monitor_seconds

    if text is None:
        return float(plan.strategy.spec.orders.monitor_every)
    if text.strip().lower() in ("0", "0s"):
        return 0.0
    try:
        return float(monitor_seconds(text))
    except ValueError as bad:
        raise ConfigError(f"--monitor-every {text}: {bad}") from None


def run_command(args: argparse.Namespace) -> int:
    if not args.strategy.exists():
        raise ConfigError(f"{args.strategy}: no such file")
    if args.live and args.replay is not None:
        raise ConfigError("--live trades on the exchange's live market; it cannot --replay")
    if args.fills == "book" and (args.live or args.replay is not None):
        raise ConfigError("--fills book is for paper trading on live data (not --live, --replay)")
    if args.monitor_every is not None and args.replay is not None:
        raise ConfigError(
            "--monitor-every watches live tickers between closes; a replay has only its "
            "recorded closes and decides at them, as the backtest does"
        )
    listen = ui_cmd.listen_for_run(args)  # refused now if it would be unsafe
    if args.replay is None:
        return _session(args, listen)
    if not args.replay.is_dir():
        raise ConfigError(f"--replay {args.replay}: not a directory (give a candle store)")
    speed = _speed(args.speed)
    from kinetic_rules.backtest.runner import prepare
    from kinetic_rules.live.notify import LogNotifier, notifier_from_env
    from kinetic_rules.live.runtime import Runtime
    from kinetic_rules.live.source import ReplaySource
    from kinetic_rules.persist.sink import EventLog

    request = candle_request(args, data_dir=args.replay, mode="replay")
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # Trades are logged as they happen: phases print as lines between them, never redraw.
    phases = Phases(live=False)
    if not args.quiet:
        phases("loading")
    prepared = prepare(request)
    prepared.plan = ui_cmd.plan_for(args, prepared.plan)
    source = ReplaySource(
        prepared.plan, prepared.feed, prepared.pairs, request.start, extras=prepared.extras
    )
    sink = _sink(args.db, prepared.plan, "replay") if args.db else None
    notifiers: list[Any] = [LogNotifier()] + ([EventLog(sink.store)] if sink else [])
    runtime = Runtime(prepared.plan, source, notifiers=notifiers, sink=sink)
    controls = ui_cmd.controls_for(runtime, sink.store if sink else None)
    telegram = notifier_from_env(controls)  # KINETIC_TELEGRAM_TOKEN / _CHAT_ID, if both are set
    if telegram is not None:
        runtime.notifiers.append(telegram)
    dashboard = ui_cmd.serve_for_run(args, listen, controls, sink.store if sink else None)
    pause = timeframe_seconds(prepared.plan.timeframe) / speed if speed else 0.0
    last = len(source.timeline) - 1
    try:
        for step in source.steps():
            if not args.quiet:
                phases("replay", step, last + 1)
            runtime.step(step)
            if runtime.stopping and not runtime.portfolio.unresolved():
                break  # /stop: nothing open any more
            if pause:
                time.sleep(pause)
        else:
            runtime.finish(last)
        ui_cmd.linger(dashboard, runtime)  # with --ui: the page stays until Ctrl-C or stop
    except KeyboardInterrupt:
        phases.close()
        print("interrupted: open trades stay as they are", file=sys.stderr)
        return _done(runtime, 130, None, dashboard)
    phases.close()
    return _done(runtime, 0, None, dashboard)


def _done(runtime: Any, code: int, monitor_every: float | None, dashboard: Any = None) -> int:
    if dashboard is not None:
        dashboard.close()
    for notifier in runtime.notifiers:
        notifier.close()
    _summary(runtime.trades(), monitor_every)
    return code


def _summary(trades: list[Any], monitor_every: float | None) -> None:
    """One line; it says how many exits the position monitor made between candle closes,
    the trades in which a session may differ from a backtest (docs/live.md)."""
    from kinetic_rules.live.monitor import count_monitor_exits
    from kinetic_rules.timeframes import format_duration

    closed = [t for t in trades if t.exit_time is not None]
    profit = sum(t.profit for t in closed)
    wins = sum(t.is_winner for t in closed)
    between = count_monitor_exits(closed)
    if monitor_every is None:
        how = "a replay has no position monitor"
    elif monitor_every <= 0:
        how = "by the monitor, off"
    else:
        how = f"by the monitor, every {format_duration(monitor_every)}"
    watch = f"{between} closed between candle closes ({how})"
    print(f"{len(trades)} trades, {wins} winners, profit {profit:+.2f}; {watch}")


def _session(args: argparse.Namespace, listen: Any = None) -> int:
    """Trading on the exchange's live candles (paper, or real orders with --live), until
    Ctrl-C or /stop."""
    from kinetic_rules.compile.modes import require_mode
    from kinetic_rules.compile.plan import build_plan
    from kinetic_rules.data.exchange import create_exchange, ensure_reachable
    from kinetic_rules.data.store import CandleStore, resolve_data_dir
    from kinetic_rules.lang.checker import check
    from kinetic_rules.live.markets import LiveUniverse
    from kinetic_rules.live.session import TradingSession
    from kinetic_rules.spec.loader import load_file

    plan = build_plan(check(load_file(args.strategy), parse_overrides(args.set)), gaps=args.gaps)
    monitor_every = _monitor_every(args.monitor_every, plan)
    plan = ui_cmd.plan_for(args, plan)
    require_mode(plan, "live" if args.live else "paper")
    spec = plan.strategy.spec
    pairs = args.pairs or spec.market.pairs or (spec.scanner.universe if spec.scanner else [])
    if not pairs and spec.scanner is None:
        raise ConfigError(
            "trading needs the pairs to trade: --pairs, market.pairs, or a scanner to "
            "pick them from all of the exchange's markets"
        )
    exchange_id = args.exchange or spec.market.exchange
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if not args.live:  # --live checks its keys first, then the connection: live_setup.py
        exchange = create_exchange(
            exchange_id, api_url=args.exchange_url, futures=spec.market.type == "futures"
        )
        ensure_reachable(exchange)  # at once, not after minutes of retries
    sink = _sink(args.db, plan, "live" if args.live else "paper")
    live: Any = None
    if args.live:
        from kinetic_rules.cli.live_setup import live_trading

        exchange, live = live_trading(args, plan, exchange_id, sink.store)
    else:
        if args.fills == "book":
            from kinetic_rules.cli.live_setup import book_paper_trading

            live = book_paper_trading(plan, exchange, sink.store, clock=now)
    universe = None
    if not pairs and spec.scanner is not None:  # scan all markets: see docs/live.md
        universe = LiveUniverse(exchange, spec.market, spec.scanner)
        pairs = universe.refresh(now())
    stream = _bid_ask_stream(args, plan, exchange, pairs)
    session = TradingSession(
        plan,
        exchange,
        CandleStore(resolve_data_dir(args.data)),
        sorted(pairs),
        clock=now,
        sleep=time.sleep,
        sink=sink,
        journal=sink.store,  # a restart resumes the session: see docs/live.md
        attach=live,
        universe=universe,
        monitor_every=monitor_every,
        bid_asks=stream,
        prepare=lambda runtime: ui_cmd.controls_for(runtime, sink.store),  # restores a pause
    )
    try:
        return _trade(args, session, sink, listen)
    finally:
        session.close()  # Ctrl-C and errors too: no training worker outlives the run
        if stream is not None:
            stream.close()


def _bid_ask_stream(args: argparse.Namespace, plan: Any, exchange: Any, pairs: list[str]) -> Any:
    """`--inputs ws`: a started WebSocket stream of bids and asks, if the rules read any."""
    if args.inputs != "ws" or args.replay is not None:
        return None
    if not (plan.live_inputs | plan.scanner_inputs) & {"spread", "bid", "ask", "book_imbalance"}:
        logging.getLogger("kinetic_rules.live").info(
            "--inputs ws: the rules read no bid or ask; no WebSocket is opened"
        )
        return None
    from kinetic_rules.live.streams import BidAskStream, pro_connector

    stream = BidAskStream(pro_connector(exchange), pairs)
    stream.start()
    return stream


def _trade(args: argparse.Namespace, session: Any, sink: StoreSink, listen: Any = None) -> int:
    """Start the session (resuming a crashed one) and trade until stopped."""
    from kinetic_rules.live.notify import LogNotifier, notifier_from_env
    from kinetic_rules.live.runtime import Runtime
    from kinetic_rules.persist.sink import EventLog

    session.start()
    runtime = session.runtime
    assert isinstance(runtime, Runtime)
    runtime.notifiers.extend([LogNotifier(), EventLog(sink.store)])
    controls = ui_cmd.controls_for(runtime, sink.store)
    telegram = notifier_from_env(controls)
    if telegram is not None:
        runtime.notifiers.append(telegram)
    dashboard = ui_cmd.serve_for_run(args, listen, controls, sink.store)
    what = "trading for real" if args.live else "paper trading"
    print(
        f"{what} {', '.join(session.pairs)} on {session.exchange.id}; Ctrl-C stops",
        file=sys.stderr,
    )
    # The windows and the plan live as long as the process: keeping them out of the
    # garbage collector's full passes spares a close a pause of tens of milliseconds.
    gc.freeze()
    try:
        session.run()
    except KeyboardInterrupt:
        left = "orders and stops stay on the exchange" if args.live else "open paper trades stay"
        print(f"stopped: {left}; run again to resume", file=sys.stderr)
        return _done(runtime, 130, session.monitor_every, dashboard)
    return _done(runtime, 0, session.monitor_every, dashboard)


def _sink(url: str | None, plan: Any, mode: str) -> StoreSink:
    """Every trade change, kept in the trade store as it happens (see docs/persistence.md)."""
    from kinetic_rules.persist import TradeStore
    from kinetic_rules.persist.sink import StoreSink

    return StoreSink(TradeStore(url), strategy=plan.strategy.spec.metadata.name, mode=mode)
