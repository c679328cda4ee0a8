"""`kinetic-rules validate` and `kinetic-rules functions`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kinetic_rules.cli.options import parse_overrides
from kinetic_rules.errors import ConfigError, Diagnostic, StrategyError, render_diagnostics
from kinetic_rules.timeframes import format_duration

__all__ = ["parse_overrides", "register"]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    validate = commands.add_parser(
        "validate",
        help="check strategy files; exit 0 when valid, 2 with every error otherwise",
        description="Check strategy files without running them: structure, names, types, "
        "timeframes, look-ahead, param bounds. Every error is listed with file:line:column.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="strategy YAML files")
    validate.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    validate.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a param, checked against its bounds (repeatable)",
    )
    validate.add_argument(
        "--strict", action="store_true", help="treat warnings (e.g. unused definitions) as errors"
    )
    validate.add_argument(
        "--mode",
        action="append",
        default=[],
        choices=("backtest", "replay", "paper", "live"),
        help="the file must run in this mode: a rule needing an input the mode never "
        "supplies (e.g. spread in a backtest) is an error (repeatable)",
    )
    validate.set_defaults(handler=run_validate)

    functions = commands.add_parser(
        "functions",
        help="list every function strategies can call",
        description="List the functions of the registry with their arguments and docs.",
    )
    functions.add_argument("name", nargs="?", help="show one function in full")
    functions.add_argument("--format", choices=("text", "json"), default="text")
    functions.set_defaults(handler=run_functions)


def run_validate(args: argparse.Namespace) -> int:
    from kinetic_rules.compile.modes import ModeCheck, check_modes
    from kinetic_rules.compile.plan import build_plan
    from kinetic_rules.lang.checker import check
    from kinetic_rules.spec.loader import load_file

    overrides = parse_overrides(args.set)
    report: list[dict[str, Any]] = []
    failed = False
    for path in args.files:
        diagnostics: list[Diagnostic]
        summary = ""
        modes: list[ModeCheck] = []
        skipped_steps: list[str] = []  # scanner steps that need live inputs
        try:
            checked = check(load_file(path), overrides)
            plan = build_plan(checked)
            diagnostics = list(checked.warnings)
            modes = check_modes(plan)
            skipped_steps = [f"scanner step '{s.name}'" for s in checked.scanner if s.live_only]
            for mode in modes:
                if mode.mode in args.mode:
                    diagnostics += mode.problems
            warmup = ", ".join(f"{n} × {tf}" for tf, n in plan.warmup.items() if n)
            summary = (
                f"{len(checked.rules())} rules, {plan.distinct_series} distinct series, "
                f"warm-up {format_duration(plan.warmup_seconds)} ({warmup or 'none'})"
            )
        except StrategyError as invalid:
            diagnostics = invalid.diagnostics
        errors = [d for d in diagnostics if d.severity == "error"]
        bad = bool(errors) or (args.strict and bool(diagnostics))
        failed = failed or bad
        if args.format == "json":
            report.append(
                {
                    "file": path,
                    "valid": not bad,
                    "summary": summary,
                    "modes": {
                        m.mode: {
                            "ok": m.ok,
                            "market": m.market,
                            "problems": [d.to_json() for d in m.problems],
                        }
                        for m in modes
                    },
                    "diagnostics": [d.to_json() for d in diagnostics],
                }
            )
            continue
        if diagnostics:
            print(render_diagnostics(diagnostics), file=sys.stderr)
        print(f"{path}: {'invalid' if bad else 'ok'}" + (f" ({summary})" if summary else ""))
        _print_modes(modes, skipped_steps)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    return 2 if failed else 0


def _print_modes(modes: list[Any], skipped_steps: list[str]) -> None:
    """Where the file runs, and for each mode it cannot run in, the rules that stop it."""
    if not modes:
        return
    runs = [m.mode for m in modes if m.ok]
    print(f"  runs in: {', '.join(runs) or 'no mode'} ({modes[0].market})")
    for label in skipped_steps:
        print(
            f"  in backtest and replay: {label} is skipped (it needs live inputs; paper and "
            "live sessions run it at each refresh)"
        )
    for mode in modes:
        for problem in mode.problems:
            print(f"  not in {mode.mode}: {problem.span.location()}: {problem.message}")


def run_functions(args: argparse.Namespace) -> int:
    from kinetic_rules.functions import REGISTRY
    from kinetic_rules.functions.docs import gives

    functions = REGISTRY.all()
    if args.name:
        found = REGISTRY.get(args.name)
        if found is None:
            import difflib

            names = [f.name for f in functions]
            near = difflib.get_close_matches(args.name.lower(), names, n=3, cutoff=0.6)
            near += [n for n in names if args.name.lower() in n and n not in near][: 3 - len(near)]
            maybe = f"did you mean {' or '.join(near)}? " if near else ""
            raise ConfigError(
                f"no function named '{args.name}'; {maybe}see `kinetic-rules functions`"
            )
        functions = [found]
    if args.format == "json":
        rows = [
            {
                "name": f.name,
                "category": f.category,
                "signature": f.signature(),
                "returns": f.returns,
                "unit": f.unit_words(),
                "same_unit": [list(group) for group in f.alike],
                "doc": f.doc,
                "args": [
                    {
                        "name": a.name,
                        "kind": a.kind.value,
                        "default": a.default,
                        "doc": a.doc,
                        "limits": a.limits(),
                        **({"unit": f.arg_units[a.name].value} if a.name in f.arg_units else {}),
                    }
                    for a in f.args
                ],
                "example": f.example,
            }
            for f in functions
        ]
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(f.signature()) for f in functions)
    unit_width = max(len(f.unit_words()) for f in functions)
    for f in functions:
        doc = f.doc.splitlines()[0] if f.doc else ""
        print(f"{f.signature():<{width}}  {f.unit_words():<{unit_width}}  {doc}")
        if args.name:
            print(f"    gives: {gives(f)}")
            for group in f.alike:
                print(f"    same unit: {', '.join(group)}")
            for a in f.args:
                default = "" if a.required else f" (default {a.default})"
                unit = f", in {f.arg_units[a.name].noun}" if a.name in f.arg_units else ""
                limits = "".join(f"; {words}" for words in a.limits())
                print(f"    {a.name}: {a.kind.value}{unit}{default} — {a.doc}{limits}")
            if f.example:
                print(f"    example: {f.example}")
    return 0
