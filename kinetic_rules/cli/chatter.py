"""`--verbose`, and keeping libraries' own log lines (Alembic's migration steps, ccxt,
urllib3 retries, the Telegram client's polling) out of the user's terminal without it."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

# Loggers of the libraries kinetic-rules drives; their INFO lines are for debugging us.
LIBRARIES = (
    "alembic",
    "sqlalchemy",
    "ccxt",
    "urllib3",
    "requests",
    "aiohttp",
    "asyncio",
    "httpx",
    "httpcore",
    "telegram",
    "apscheduler",
)


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """`--verbose` before or after the command name (`kinetic-rules backtest -v FILE`)."""
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also show the log lines of the libraries used (migrations, exchange client…)",
    )
    for sub in _subparsers(parser):
        sub.add_argument(
            "--verbose",
            "-v",
            action="store_true",
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += [child, *_subparsers(child)]
    return found


def quiet_libraries(*, verbose: bool) -> Callable[[], None]:
    """Libraries log at WARNING and above only, unless --verbose; ours are untouched.
    Returns what puts the levels back (a command run in-process leaves no trace)."""
    loggers = [logging.getLogger(name) for name in LIBRARIES]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET if verbose else logging.WARNING)

    def restore() -> None:
        for logger, level in zip(loggers, before, strict=True):
            logger.setLevel(level)

    return restore
