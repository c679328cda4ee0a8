"""Where a strategy can run: backtest, replay, paper, live; and why not, with the place.

Each mode supplies its own inputs. Candles are everywhere. The order-book inputs
(`spread`, `book_imbalance`, `bid`, `ask`) exist only in a running session, which reads
the exchange at each close. `funding_rate` exists only on futures markets: live from
the exchange, and in backtests and replays from the funding rates stored beside the
candles. A rule that cannot hold without an input its mode never supplies — an entry
condition `spread < 0.1%`, say — would be undefined at every candle and block every
entry without a word; so such a file is refused for that mode, at once, with the
rule's position. A live input read where its absence leaves a value defined (the
condition of an `if`, one side of an `or`) only makes the rule act differently there.
"""

from __future__ import annotations

from dataclasses import dataclass

from kinetic_rules.compile.plan import Plan
from kinetic_rules.errors import Diagnostic, StrategyError
from kinetic_rules.lang import ast
from kinetic_rules.lang.names import FUTURES_ONLY, LIVE_NAMES, stored_inputs

MODES = ("backtest", "replay", "paper", "live")


def supplied(mode: str, market: str) -> frozenset[str]:
    """The live inputs a mode gives the rules on a market type (spot or futures)."""
    if mode in ("backtest", "replay"):
        return stored_inputs(market)
    return LIVE_NAMES - FUTURES_ONLY if market == "spot" else LIVE_NAMES


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
    market = plan.strategy.spec.market.type
    missing = LIVE_NAMES - supplied(mode, market)
    found = []
    rules = list(plan.reads_live)
    if mode in ("paper", "live"):  # where the scanner's live-only steps run
        rules += plan.live_only
    for rule in rules:
        needed = sorted(needed_inputs(rule.node) & missing)
        if not needed:
            continue
        names = " and ".join(f"'{n}'" for n in needed)
        if market == "spot" and set(needed) <= FUTURES_ONLY:
            why = "which a spot market never has (funding exists on futures markets only)"
            hint = "trade it on a futures market (`market.type: futures`)"
        else:
            why = (
                f"which a {mode} never supplies (live-only: read from the exchange in paper "
                "and live sessions)"
            )
            hint = (
                "run it with `run` (paper) or `run --live`, or make the input optional, "
                "e.g. `if spread < 0.1% then 1 else 0` in a score"
            )
        message = f"{rule.label} needs {names}, {why}; it would never hold"
        found.append(Diagnostic("error", "mode-input", message, rule.span, hint=hint))
    return found


def needed_inputs(node: ast.Node) -> set[str]:
    """Live-only names without which `node` is never defined (or never true)."""
    match node:
        case ast.Name(id=name):
            return {name} if name in LIVE_NAMES else set()
        case ast.Binary(op="or", left=left, right=right):
            return needed_inputs(left) & needed_inputs(right)
        case ast.Unary(op="not"):
            return set()  # `not (spread < x)` holds when spread is undefined
        case ast.IfElse(then=then, otherwise=otherwise):
            return needed_inputs(then) & needed_inputs(otherwise)
    found: set[str] = set()
    for child in node.children():
        found |= needed_inputs(child)
    return found
