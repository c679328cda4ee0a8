"""`kinetic-rules`: the entry point. Each command group lives in its own module and adds
its subcommands to the parser; this module only wires them and maps errors to exit codes.

Exit codes: 0 success, 1 the command ran and found a problem it reports (e.g. data
validation findings), 2 a user error (bad strategy, bad flag, bad data), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from kinetic_rules import __version__
from kinetic_rules.errors import KineticError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from kinetic_rules.cli import backtest_cmd, data_cmd, lang_cmd, run_cmd, trades_cmd

    parser = argparse.ArgumentParser(
        prog="kinetic-rules",
        description="A declarative rules engine for crypto trading.",
    )
    parser.add_argument("--version", action="version", version=f"kinetic-rules {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    lang_cmd.register(commands)
    data_cmd.register(commands)
    backtest_cmd.register(commands)
    backtest_cmd.register_explain(commands)
    run_cmd.register(commands)
    trades_cmd.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; KineticError → its rendering on stderr and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KineticError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    sys.exit(main())
