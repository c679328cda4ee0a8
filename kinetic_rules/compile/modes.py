"""Where a strategy can run: backtest, replay, paper, live; and why not, with the place.

Each mode supplies its own inputs. Candles are everywhere; the live-only inputs
(`spread`, `book_imbalance`) only in a running session, which reads the order book at
each close. A rule that cannot hold without an input its mode never supplies — an
entry condition `spread < 0.1%`, say — would be undefined at every candle and block
every entry without a word; so such a file is refused for that mode, at once, with
the rule's position. A live input read where its absence leaves a value defined (the
condition of an `if`, one side of an `or`) only makes the rule act differently there.
"""

from __future__ import annotations

from dataclasses import dataclass

from kinetic_rules.compile.interpret import needed_inputs
from kinetic_rules.compile.plan import Plan
from kinetic_rules.errors import Diagnostic, StrategyError
from kinetic_rules.lang.names import LIVE_NAMES

MODES = ("backtest", "replay", "paper", "live")
SUPPLIED: dict[str, frozenset[str]] = {
    "backtest": frozenset(),
    "replay": frozenset(),
    "paper": LIVE_NAMES,
    "live": LIVE_NAMES,
}


@dataclass(frozen=True)
class ModeCheck:
    mode: str
    market: str  # spot or futures: the file's market type
    problems: tuple[Diagnostic, ...]  # why the file cannot run in this mode

    @property
    def ok(self) -> bool:
        return not self.problems


def check_modes(plan: Plan) -> list[ModeCheck]:
    """Every mode, and the rules that keep the file from running in it."""
    market = plan.strategy.spec.market.type
    return [ModeCheck(mode, market, tuple(mode_problems(plan, mode))) for mode in MODES]


def require_mode(plan: Plan, mode: str) -> None:
    """Refuse, with positions, a file that cannot run in `mode`."""
    problems = mode_problems(plan, mode)
    if problems:
        raise StrategyError(problems)


def mode_problems(plan: Plan, mode: str) -> list[Diagnostic]:
    missing = LIVE_NAMES - SUPPLIED[mode]
    found = []
    for rule in plan.reads_live:
        needed = sorted(needed_inputs(rule.node) & missing)
        if needed:
            names = " and ".join(f"'{n}'" for n in needed)
            found.append(
                Diagnostic(
                    "error",
                    "mode-input",
                    f"{rule.label} needs {names}, which a {mode} never supplies (live-only: "
                    f"read from the order book in paper and live sessions); it would never hold",
                    rule.span,
                    hint="run it with `run` (paper) or `run --live`, or make the input "
                    "optional, e.g. `if spread < 0.1% then 1 else 0` in a score",
                )
            )
    return found
