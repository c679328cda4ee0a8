"""`kinetic-rules`: the entry point. Each command group lives in its own module and adds
its subcommands to the parser; this module only wires them and maps errors to exit codes.

Exit codes: 0 success, 1 the command ran and found a problem it reports (e.g. data
validation findings) or kinetic-rules itself failed (an internal error, details saved to a
file), 2 a user error (bad strategy, bad flag, bad data), 3 the exchange cannot be reached
(offline, name not resolved, connection refused, timed out), 130 interrupted, and death by
SIGPIPE (141 in a shell) when the reader of the output goes away (`… | head`).

Everything the command writes to the terminal, its log records and a crash report pass
through `kinetic_rules.secrets.mask`: no password or key is ever shown or saved.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from typing import TextIO, cast

from kinetic_rules import __version__
from kinetic_rules.cli.chatter import add_verbose, quiet_libraries
from kinetic_rules.cli.process import own_process
from kinetic_rules.errors import KineticError
from kinetic_rules.secrets import (
    MaskedStream,
    install_log_masking,
    mask,
    mask_argv,
    register_url,
)

Handler = Callable[[argparse.Namespace], int]
PIPE_CLOSED = 128 + 13  # what a shell reports for a command ended by SIGPIPE


def build_parser() -> argparse.ArgumentParser:
    from kinetic_rules.cli import (
        ablate_cmd,
        backtest_cmd,
        data_cmd,
        lang_cmd,
        models_cmd,
        research_cmd,
        run_cmd,
        trades_cmd,
        ui_cmd,
    )

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
    research_cmd.register(commands)
    ablate_cmd.register(commands)
    models_cmd.register(commands)
    run_cmd.register(commands)
    trades_cmd.register(commands)
    ui_cmd.register(commands)
    add_verbose(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; KineticError → its rendering on stderr and its exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    for argument in arguments:  # a --db password is hidden even where it appears alone
        register_url(argument.partition("=")[2] if argument.startswith("-") else argument)
    install_log_masking()
    screen = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, MaskedStream(screen[0]))
    sys.stderr = cast(TextIO, MaskedStream(screen[1]))
    try:
        return _dispatch(arguments)
    finally:
        sys.stdout, sys.stderr = screen


def _pipe_errors_reach_us() -> None:
    """rich ends the process with exit status 1 on a closed pipe (its documented default,
    meant to be overridden); let the error reach `main`, which ends the way a shell
    expects."""
    from rich.console import Console

    setattr(Console, "on_broken_pipe", _broken_pipe)  # noqa: B010 - a library hook


def _broken_pipe(_console: object) -> None:
    raise BrokenPipeError


def _dispatch(arguments: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(arguments)
    restore_logs = quiet_libraries(verbose=getattr(args, "verbose", False))
    handler: Handler = args.handler
    _pipe_errors_reach_us()  # after parsing: --help need not import rich
    try:
        return handler(args)
    except KineticError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to say
        return PIPE_CLOSED
    except Exception as bug:  # never a traceback on screen, even for our own mistakes
        return _internal_error(bug, arguments)
    finally:
        restore_logs()


def _internal_error(bug: Exception, arguments: list[str]) -> int:
    """A bug in kinetic-rules, not in the user's input: say so, keep the details in a file."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="kinetic-rules-crash-", suffix=".txt", delete=False
    ) as report:
        command = mask_argv(["kinetic-rules", *arguments])
        report.write(f"kinetic-rules {__version__}\n{command}\n\n")
        report.write(mask("".join(traceback.format_exception(bug))))
    print(
        f"internal error: {type(bug).__name__}: {mask(str(bug))}\n"
        f"This is a bug in kinetic-rules, not in your input. The details are in {report.name}; "
        "please attach that file when you report it.",
        file=sys.stderr,
    )
    return 1


def run() -> None:
    own_process()  # the command has the process to itself
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = PIPE_CLOSED
    if code == PIPE_CLOSED:
        _end_by_sigpipe(sys.stdout)
    sys.exit(code)


def _end_by_sigpipe(stdout: TextIO) -> None:
    """End the way `cat` or `grep` do when their reader leaves: by SIGPIPE, silently.

    Output still buffered goes to /dev/null first, so Python's own final flush cannot
    print "Exception ignored" on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(devnull, stdout.fileno())
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    sys.exit(PIPE_CLOSED)
