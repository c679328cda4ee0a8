"""`kinetic-rules ui` and `run … --ui`: the dashboard (see docs/dashboard.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kinetic_rules.errors import ConfigError

if TYPE_CHECKING:
    from kinetic_rules.live.controls import SessionControls
    from kinetic_rules.ui.serve import Background, Listen

DEFAULT_LISTEN = "127.0.0.1:8080"
FEED_DAYS = 7.0  # the decision feed a trade store keeps, by default


def _tls_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ui-cert", type=Path, metavar="FILE", help="TLS certificate (PEM)")
    parser.add_argument("--ui-key", type=Path, metavar="FILE", help="TLS private key (PEM)")
    parser.add_argument(
        "--ui-insecure",
        action="store_true",
        help="allow a non-loopback address without TLS (the token crosses the network in "
        "clear text: only on a network that is yours alone)",
    )
    parser.add_argument(
        "--ui-allow-host",
        action="append",
        metavar="NAME",
        help="also answer requests for this host name (a reverse proxy's public name); "
        "repeatable. Loopback names and the listening address are always answered",
    )


def add_run_flags(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--ui",
        nargs="?",
        const=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"serve the dashboard while trading (default {DEFAULT_LISTEN}); controls need "
        "KINETIC_UI_TOKEN. See docs/dashboard.md",
    )
    _tls_flags(run)
    run.add_argument(
        "--feed-days",
        type=_feed_days,
        default=FEED_DAYS,
        metavar="DAYS",
        help=f"days of the decision feed the trade store keeps for `kinetic-rules ui --db` "
        f"(default {FEED_DAYS:g}; 0 keeps none). See docs/dashboard.md",
    )


def _feed_days(text: str) -> float:
    from kinetic_rules.persist.feed import Retention  # the trade store's bounds

    try:
        return Retention(days=float(text)).days
    except ValueError as bad:
        raise argparse.ArgumentTypeError(f"{text}: {bad}") from None


def listen_for_run(args: argparse.Namespace) -> Listen | None:
    """`--ui`'s address, checked before the session starts; None without --ui."""
    if args.ui is None:
        if args.ui_cert or args.ui_key or args.ui_insecure or args.ui_allow_host:
            raise ConfigError("--ui-cert, --ui-key, --ui-insecure and --ui-allow-host go with --ui")
        return None
    from kinetic_rules.ui.serve import listen_from, token_from_env

    token_from_env()  # a token too short is refused now, not after the session started
    return listen_from(
        args.ui, args.ui_cert, args.ui_key, args.ui_insecure, "--ui", args.ui_allow_host
    )


def records_feed(args: argparse.Namespace) -> bool:
    """Whether the session computes the decision feed: to show it (--ui) or to keep it in
    its trade store (every paper or live session, and a replay with --db)."""
    stored = args.replay is None or bool(args.db)
    return args.ui is not None or (stored and args.feed_days > 0)


def plan_for(args: argparse.Namespace, plan: Any) -> Any:
    """With the decision feed, the plan also keeps what it shows (explain's lines)."""
    if not records_feed(args):
        return plan
    from kinetic_rules.backtest.explain import showing_entries

    return showing_entries(plan)


def controls_for(runtime: Any, journal: Any) -> SessionControls:
    """The one set of controls Telegram and the dashboard share."""
    from kinetic_rules.live.controls import SessionControls

    return SessionControls(runtime, journal)


def serve_for_run(
    args: argparse.Namespace, listen: Listen | None, controls: SessionControls, store: Any
) -> Background | None:
    """With --ui, the dashboard; with a trade store, each close recorded in it for `ui
    --db` (with or without --ui). The server, if any, for the caller to close."""
    from kinetic_rules.persist.feed import Retention

    keep = Retention(days=args.feed_days if records_feed(args) else 0.0)
    if listen is None:
        if store is not None:
            from kinetic_rules.ui.session import watch_session

            watch_session(controls.runtime, args.strategy, store, keep)
        return None
    from kinetic_rules.ui.serve import token_from_env
    from kinetic_rules.ui.session import serve_session

    return serve_session(controls, args.strategy, listen, token_from_env(), store, keep)


def linger(dashboard: Background | None, runtime: Any) -> None:
    """A finished replay keeps its dashboard open until Ctrl-C or the stop control."""
    if dashboard is None:
        return
    print("replay done; the dashboard stays open until Ctrl-C", file=sys.stderr)
    while not runtime.stopping:
        time.sleep(0.2)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    ui = commands.add_parser(
        "ui",
        help="the dashboard of a stopped or remote session's trade store, or of a "
        "backtest's results (read-only)",
        description="Serve the dashboard over a trade store: positions, trades, equity, the "
        "decision feed, candles and the event log of a session that ran (or runs elsewhere) "
        "with that store, as it recorded them at each close. Controls answer 409: only "
        "`run … --ui` can control a session. See docs/dashboard.md.",
    )
    what = ui.add_mutually_exclusive_group()
    what.add_argument(
        "--db",
        metavar="URL",
        help="the trade store (default: $KINETIC_RULES_DB or sqlite:///user_data/trades.sqlite)",
    )
    what.add_argument(
        "--results",
        metavar="DIR",
        type=Path,
        help="a finished backtest's results (the folder `backtest --report DIR` wrote)",
    )
    ui.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"where to serve it (default {DEFAULT_LISTEN})",
    )
    _tls_flags(ui)
    ui.set_defaults(handler=ui_command)


def ui_command(args: argparse.Namespace) -> int:
    from kinetic_rules.persist import TradeStore
    from kinetic_rules.ui.app import create_app
    from kinetic_rules.ui.serve import listen_from, server, token_from_env
    from kinetic_rules.ui.sources import StoreSource

    listen = listen_from(
        args.listen, args.ui_cert, args.ui_key, args.ui_insecure, allow_hosts=args.ui_allow_host
    )
    token = token_from_env()
    if args.results is not None:
        from kinetic_rules.ui.results import ResultsSource

        results = create_app(ResultsSource(args.results), token)
        print(f"dashboard of {args.results} on {listen.url}; Ctrl-C stops", file=sys.stderr)
        server(results, listen).run()
        return 0
    store = TradeStore(args.db, create=False, read_only=True)
    try:
        app = create_app(StoreSource(store), token)
        print(
            f"dashboard of {store.where} on {listen.url} (read-only); Ctrl-C stops", file=sys.stderr
        )
        server(app, listen).run()
    finally:
        store.close()
    return 0
