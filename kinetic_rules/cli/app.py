"""`kinetic-rules`: the entry point. Each command group lives in its own module and adds
its subcommands to the parser; this module only wires them and maps errors to exit codes.

Exit codes: 0 success, 1 the command ran and found a problem it reports (e.g. data
validation findings) or kinetic-rules itself failed (an internal error, details saved to a
file), 2 a user error (bad strategy, bad flag, bad data), 3 the exchange cannot be reached
(offline, name not resolved, connection refused, timed out), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from kinetic_rules import __version__
from kinetic_rules.cli.chatter import add_verbose, quiet_libraries
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
    add_verbose(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; KineticError → its rendering on stderr and its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    restore_logs = quiet_libraries(verbose=getattr(args, "verbose", False))
    handler: Handler = args.handler
    try:
        return handler(args)
    except KineticError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as bug:  # never a traceback on screen, even for our own mistakes
        return _internal_error(bug)
    finally:
        restore_logs()


def _internal_error(bug: Exception) -> int:
    """A bug in kinetic-rules, not in the user's input: say so, keep the details in a file."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="kinetic-rules-crash-", suffix=".txt", delete=False
    ) as report:
        report.write(f"kinetic-rules {__version__}\n{' '.join(sys.argv)}\n\n")
        report.write("".join(traceback.format_exception(bug)))
    print(
        f"internal error: {type(bug).__name__}: {bug}\n"
        f"This is a bug in kinetic-rules, not in your input. The details are in {report.name}; "
        "please attach that file when you report it.",
        file=sys.stderr,
    )
    return 1


def run() -> None:
    sys.exit(main())
