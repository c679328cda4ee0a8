"""Checked strategy → plan: the distinct series to compute, and the warm-up they need.

Because checked trees are fully inlined and spans take no part in equality, a set of
nodes is exactly the set of distinct computations: `ema(close, 50)` written in five
places is one entry. Expressions that depend on an open trade (stops, exits with
`profit`, …) are split: their trade-free parts become market series computed with
everything else, and only the thin elementwise rest is left for the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from kinetic_rules.compile.interpret import constants
from kinetic_rules.errors import Diagnostic, StrategyError
from kinetic_rules.functions import REGISTRY
from kinetic_rules.lang import ast
from kinetic_rules.lang.checked import CheckedStrategy, Rule
from kinetic_rules.lang.names import LIVE_NAMES, reads_context
from kinetic_rules.timeframes import timeframe_seconds

# Longer than any market's history, and short enough that a warm-up added to a candle's
# time (or two of them, across timeframes) stays a representable time.
MAX_WARMUP_SECONDS = 50 * 365 * 86_400


@dataclass(frozen=True)
class DataNeed:
    """Candles of one (pair, timeframe); pair None means the pair being traded."""

    pair: str | None
    timeframe: str


@dataclass(frozen=True)
class Plan:
    strategy: CheckedStrategy
    timeframe: str
    market: tuple[ast.Node, ...]  # market series every pair computes, in a stable order
    live_only: tuple[Rule, ...]  # scanner steps needing live-only inputs: skipped in backtests
    reads_live: tuple[Rule, ...]  # other rules reading a live-only input (undefined here)
    data: tuple[DataNeed, ...]  # candles the plan reads
    warmup: dict[str, int]  # candles of each timeframe needed before its series are trustworthy
    warmup_seconds: int  # the longest of those, as time
    distinct_series: int  # distinct computed nodes (functions, history, contexts)
    trade_free: frozenset[ast.Node] = field(default_factory=frozenset)
    gaps: str = "keep"  # missing candles: kept as holes, or filled (data/gaps.py)
    durations: str = "time"  # under keep: duration windows span time, or count candles
    accepted_warmup: int | None = None  # seconds: `backtest.warmup` or `--warmup`, if shorter
    shown: frozenset[ast.Node] = field(default_factory=frozenset)  # kept for display only

    def showing(self, nodes: tuple[ast.Node, ...]) -> Plan:
        """This plan also computing `nodes` (trade-free market series) and keeping their
        values at every candle, for a display that reads them (the dashboard's decision
        feed); decisions never read them, so the trades stay the same."""
        extra = tuple(dict.fromkeys(n for n in nodes if n not in self.market))
        return replace(self, market=self.market + extra, shown=self.shown | frozenset(nodes))

    @property
    def live_inputs(self) -> frozenset[str]:
        """The live-only names the rules read (not the scanner's live-only steps)."""
        return frozenset(name for rule in self.reads_live for name in live_names(rule.node))

    @property
    def scanner_inputs(self) -> frozenset[str]:
        """The live-only names the scanner's live-only steps read (at each refresh, live)."""
        return frozenset(name for rule in self.live_only for name in live_names(rule.node))

    def with_live_steps(self) -> Plan:
        """This plan with the scanner's live-only steps among its market series: what a
        running session computes, as it supplies their inputs at each refresh."""
        steps = tuple(rule.node for rule in self.live_only if rule.node not in self.market)
        return replace(self, market=self.market + steps) if steps else self

    @property
    def windows_span_time(self) -> bool:
        """Duration windows are evaluated on the time grid (compile/time_windows.py)."""
        return self.gaps == "keep" and self.durations == "time"

    def is_trade_free(self, node: ast.Node) -> bool:
        return node in self.trade_free or not _uses_trade(node)

    def warmup_candles(self, timeframe: str) -> int:
        """Candles of `timeframe` waited for before trading: the full warm-up, or fewer
        when the user accepted a shorter one (indicators are still computed on all data)."""
        needed = self.warmup.get(timeframe, 0)
        if self.accepted_warmup is None:
            return needed
        return min(needed, -(-self.accepted_warmup // timeframe_seconds(timeframe)))

    @property
    def used_warmup_seconds(self) -> int:
        """The longest warm-up actually waited for, as time."""
        return max(timeframe_seconds(tf) * self.warmup_candles(tf) for tf in self.warmup)


def build_plan(checked: CheckedStrategy, gaps: str | None = None) -> Plan:
    """The plan of a checked strategy; `gaps` overrides the file's `backtest.gaps`."""
    base = checked.timeframe
    market: dict[ast.Node, None] = {}
    live_only = tuple(s.rule for s in checked.scanner if s.live_only)
    reads_live = tuple(r for r in checked.rules() if r not in live_only and _uses_live(r.node))
    for rule in checked.rules():
        if rule in live_only:
            continue
        for node in _market_parts(rule):
            market.setdefault(node, None)
    needs: dict[DataNeed, None] = {DataNeed(None, base): None}
    warmups: dict[str, int] = {base: 0}
    distinct: set[tuple[ast.Node, str, str | None]] = set()
    for node in market:
        candles = _warmup(node, base, None, needs, warmups, distinct)
        warmups[base] = max(warmups[base], candles)
    for rule in live_only:  # computed live only: their candles are needed, not their warm-up
        _warmup(rule.node, base, None, needs, {base: 0}, set())
    seconds = max(timeframe_seconds(tf) * n for tf, n in warmups.items())
    if seconds > MAX_WARMUP_SECONDS:
        raise StrategyError([_too_long_warmup(checked, base)])
    trade_free = frozenset(market)
    return Plan(
        strategy=checked,
        timeframe=base,
        market=tuple(market),
        live_only=live_only,
        reads_live=reads_live,
        data=tuple(needs),
        warmup=warmups,
        warmup_seconds=seconds,
        distinct_series=len(distinct),
        trade_free=trade_free,
        gaps=gaps or checked.spec.backtest.gaps,
        durations=checked.spec.backtest.durations,
        accepted_warmup=checked.spec.backtest.warmup,
    )


def _too_long_warmup(checked: CheckedStrategy, base: str) -> Diagnostic:
    """The first rule whose warm-up alone is too long: each limit on a window holds, but
    windows over windows (or a long window of long candles) add up past any history."""
    for rule in checked.rules():
        warmups: dict[str, int] = {base: 0}
        for node in _market_parts(rule):
            warmups[base] = max(warmups[base], _warmup(node, base, None, {}, warmups, set()))
        longest = max(timeframe_seconds(tf) * n for tf, n in warmups.items())
        if longest > MAX_WARMUP_SECONDS:
            message = (
                f"this needs {_years(longest)} of candles before its first value; "
                f"at most {_years(MAX_WARMUP_SECONDS)} of warm-up is possible"
            )
            hint = "shorten the windows (or nest fewer of them), or use a shorter timeframe"
            return Diagnostic("error", "warmup-too-long", message, rule.span, hint)
    raise AssertionError("a warm-up too long for the strategy, yet for none of its rules")


def _years(seconds: int) -> str:
    return f"{seconds / (365 * 86_400):,.0f} years"


def _uses_trade(node: ast.Node) -> bool:
    return reads_context(node)


def _uses_live(node: ast.Node) -> bool:
    return bool(live_names(node))


def live_names(node: ast.Node) -> list[str]:
    """The live inputs (spread, bid, funding_rate, ...) a rule reads, itself or through names."""
    return sorted({n.id for n in node.walk() if isinstance(n, ast.Name) and n.id in LIVE_NAMES})


def _market_parts(rule: Rule) -> list[ast.Node]:
    """The rule itself if it never reads a trade; otherwise its largest trade-free parts."""
    if not _uses_trade(rule.node):
        return [rule.node]
    found: list[ast.Node] = []
    stack = [rule.node]
    while stack:
        node = stack.pop()
        if not _uses_trade(node):
            if not isinstance(node, ast.Number | ast.Bool | ast.String | ast.ListLit):
                found.append(node)
            continue
        stack.extend(node.children())
    return found


def _warmup(
    node: ast.Node,
    tf: str,
    pair: str | None,
    needs: dict[DataNeed, None],
    warmups: dict[str, int],
    distinct: set[tuple[ast.Node, str, str | None]],
) -> int:
    """Candles of `tf` needed before `node` is trustworthy, recording data needs on the way."""
    match node:
        case ast.Call(func=name, args=args):
            function = REGISTRY.get(name)
            assert function is not None
            distinct.add((node, tf, pair))
            inner = 0
            for spec, arg in zip(function.args, args, strict=True):
                if spec.kind.is_series:
                    inner = max(inner, _warmup(arg, tf, pair, needs, warmups, distinct))
            return inner + function.warmup(constants(function, args))
        case ast.History(operand=operand, offset=offset):
            distinct.add((node, tf, pair))
            return _warmup(operand, tf, pair, needs, warmups, distinct) + int(_value(offset))
        case ast.Context(operand=operand, timeframe=other_tf, pair=other_pair):
            target_tf, target_pair = other_tf or tf, other_pair or pair
            needs.setdefault(DataNeed(target_pair, target_tf), None)
            distinct.add((node, tf, pair))
            inner = _warmup(operand, target_tf, target_pair, needs, warmups, distinct)
            warmups[target_tf] = max(warmups.get(target_tf, 0), inner)
            # Each timeframe's warm-up is counted on its own candles: data of a longer
            # timeframe often reaches further back than the base candles do.
            return 0
        case _:
            return max(
                (_warmup(c, tf, pair, needs, warmups, distinct) for c in node.children()),
                default=0,
            )


def _value(node: ast.Node) -> float:
    return node.value if isinstance(node, ast.Number) else math.nan
