"""`explain`: why did (or didn't) the strategy act on this pair at this candle?

Every named condition is shown with the values of its operands and its verdict, as
the rules saw them at the close of that candle; then the trade that was open, if any,
with its stop as it stood then. Values come from the same evaluator as the backtest.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kinetic_rules.backtest.runner import BacktestRequest, Prepared, prepare, simulate
from kinetic_rules.compile.evaluate import Evaluator, PairSignals
from kinetic_rules.compile.interpret import operands
from kinetic_rules.compile.plan import Plan
from kinetic_rules.engine.fills import fill_model
from kinetic_rules.engine.model import Trade
from kinetic_rules.engine.pairs import prepare_market
from kinetic_rules.engine.portfolio import path_of
from kinetic_rules.errors import ConfigError
from kinetic_rules.lang import ast
from kinetic_rules.lang.checked import Rule
from kinetic_rules.lang.printer import to_text
from kinetic_rules.timeframes import timeframe_seconds

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class Line:
    label: str
    text: str  # the rule as written (printed from its tree)
    value: str  # its value, or "true"/"false"
    holds: bool | None  # None for numbers
    parts: list[tuple[str, str]] = field(default_factory=list)  # operand text, value


def _computed(node: ast.Node) -> bool:
    """Whether a node is a series worth evaluating and showing (a literal is in the text)."""
    return not isinstance(node, ast.Number | ast.Bool | ast.String)


def _reads_regime(node: ast.Node) -> bool:
    """`regime` or `regime[n]`: values that are class numbers, shown by their names."""
    if isinstance(node, ast.History):
        node = node.operand
    return isinstance(node, ast.Name) and node.id == "regime"


def _show_regime(value: object, names: list[str]) -> str:
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number):
        return "undefined (before the first candle)"
    return names[int(number)]


def _show(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number):
        return "undefined (warm-up, no data, or a division by zero)"
    return f"{number:.6g}"


@dataclass
class _Moment:
    """What every line is read at: one pair's series, the candle, the params, the regimes."""

    signals: PairSignals
    at: int
    params: dict[str, object]
    regimes: list[str]
    definitions: dict[str, Rule]  # indicators and conditions, by name


def _line(rule: Rule, label: str, moment: _Moment) -> Line:
    signals, at, params = moment.signals, moment.at, moment.params
    value = signals.values[rule.node][at]
    written = _as_written(rule)
    parts = [(f"${name}", str(params[name])) for name in _PARAM.findall(written) if name in params]
    for operand in dict.fromkeys(operands(rule.node)):  # each operand once, in order
        found = signals.values.get(operand) if _computed(operand) else None
        if found is None:
            continue
        if _reads_regime(operand):
            parts.append((_label(operand, rule, moment), _show_regime(found[at], moment.regimes)))
        else:
            parts.append((_label(operand, rule, moment), _show(found[at])))
    holds = bool(value) if rule.kind == "bool" else None
    return Line(label, written, _show(value), holds, parts)


def _label(operand: ast.Node, rule: Rule, moment: _Moment) -> str:
    """An operand as the user knows it: as written in this rule, else by the name of the
    indicator or condition it is, else as written in that definition, else printed."""
    span = operand.span
    inside = span.source is rule.span.source and rule.span.start <= span.start < span.end
    if span.source is not None and inside and span.end <= rule.span.end:
        return " ".join(span.source.text[span.start : span.end].split())
    same = [name for name, d in moment.definitions.items() if d.node == operand]
    if same:  # two definitions may compute the same series: the one written here
        return next((n for n in same if moment.definitions[n].node.span == span), same[0])
    if span.source is not None and span.start < span.end:
        return " ".join(span.source.text[span.start : span.end].split())
    return to_text(operand)


def _as_written(rule: Rule) -> str:
    """The rule's text in the user's file; the printed tree if it has no source."""
    source = rule.span.source
    if source is None or rule.span.end <= rule.span.start:
        return to_text(rule.node)
    return " ".join(source.text[rule.span.start : rule.span.end].split())


def explain(request: BacktestRequest, pair: str, at: pd.Timestamp, trades: bool = True) -> str:
    prepared = prepare(request)
    plan = prepared.plan
    if pair not in prepared.pairs:
        prepared.pairs = sorted({*prepared.pairs, pair})
    rules = _free_rules(plan)
    extra = tuple(
        o for r in rules for o in operands(r.node) if _computed(o) and o not in plan.trade_free
    )
    signals = Evaluator(plan, prepared.feed).evaluate(pair, extra)
    index = signals.index
    position = int(index.searchsorted(at, side="right")) - 1
    if position < 0 or at > index[-1] + (
        index[-1] - index[-2] if len(index) > 1 else pd.Timedelta(0)
    ):
        raise ConfigError(
            f"{pair} has {plan.timeframe} candles from {index[0]} to {index[-1]}; "
            f"{at} is outside them"
        )
    out = [f"{pair} — candle {index[position]} ({plan.timeframe}), as decided at its close"]
    if index[position] != at:
        step = pd.Timedelta(seconds=timeframe_seconds(plan.timeframe))
        which = "that contains it" if at < index[position] + step else "latest before it"
        out.append(
            f"note: {at:%Y-%m-%d %H:%M:%S} UTC is not the open of a {plan.timeframe} candle; "
            f"used the candle {which}, opened {index[position]:%Y-%m-%d %H:%M}"
        )
    checked = plan.strategy
    regimes = [name for name, _ in checked.regime]
    definitions = {**checked.indicators, **checked.conditions}
    moment = _Moment(signals, position, dict(checked.params), regimes, definitions)
    if signals.regime is not None:
        out.append(f"\nregime: {regimes[int(signals.regime[position])]}")
        for cls, rule in checked.regime:
            if not isinstance(rule.node, ast.Bool):
                out += _render(_line(rule, cls, moment))
    if checked.protections:
        out.append("\nprotections:")
        for name, rule in checked.protections.items():
            out += _render(_decided_line(plan, rule, name, moment))
    for entry in _entry_verdicts(plan, moment):
        out.append(
            f"\nentry {entry.side}: {entry.verdict} — {entry.held} of {entry.total} conditions hold"
        )
        for line in entry.lines:
            out += _render(line)
    if checked.tags:
        out.append("\nentry tags (a trade entered here would carry those that hold):")
        for name, rule in checked.tags.items():
            out += _render(_line(rule, name, moment))
    for side, side_rules in checked.exit.items():
        free = {n: r for n, r in side_rules.items() if plan.is_trade_free(r.node)}
        if free:
            out.append(f"\nexit {side} (any one closes an open trade):")
            for name, rule in free.items():
                out += _render(_line(rule, name, moment))
    if trades:
        out += _trade_lines(trade_state(request, prepared, pair, index[position]))
    return "\n".join(out)


@dataclass
class EntryVerdict:
    """One side's entry conditions at a candle: each line, and whether they all hold."""

    side: str
    verdict: str  # "SIGNAL", "SIGNAL if the portfolio allows" or "no signal"
    held: int  # market conditions that hold
    total: int  # market conditions (those reading the portfolio are judged in its loop)
    lines: list[Line]


def entry_verdicts(plan: Plan, signals: PairSignals, at: int) -> list[EntryVerdict]:
    """What `explain` says of the entry conditions at candle `at` of these signals (the
    live dashboard's decision feed reads a running session's signals with it)."""
    checked = plan.strategy
    definitions = {**checked.indicators, **checked.conditions}
    regimes = [name for name, _ in checked.regime]
    return _entry_verdicts(plan, _Moment(signals, at, dict(checked.params), regimes, definitions))


def showing_entries(plan: Plan) -> Plan:
    """The plan keeping what `entry_verdicts` reads at every candle: each trade-free entry
    condition and the operands it shows (a running session discards them otherwise)."""
    nodes = []
    for side in plan.strategy.entry.values():
        for rule in side.values():
            if plan.is_trade_free(rule.node):
                nodes.append(rule.node)
                nodes += [o for o in operands(rule.node) if _computed(o) and plan.is_trade_free(o)]
    return plan.showing(tuple(nodes))


def _entry_verdicts(plan: Plan, moment: _Moment) -> list[EntryVerdict]:
    found = []
    for side, side_rules in plan.strategy.entry.items():
        if not side_rules:
            continue
        lines = [_decided_line(plan, r, n, moment) for n, r in side_rules.items()]
        market = [line for line in lines if line.holds is not None]
        held = sum(bool(line.holds) for line in market)
        verdict = "SIGNAL" if held == len(market) else "no signal"
        if verdict == "SIGNAL" and len(market) < len(lines):
            verdict += " if the portfolio allows"
        found.append(EntryVerdict(side, verdict, held, len(market), lines))
    return found


def _free_rules(plan: Plan) -> list[Rule]:
    checked = plan.strategy
    found = [r for _, r in checked.regime]
    found += [r for r in checked.protections.values() if plan.is_trade_free(r.node)]
    found += list(checked.tags.values())
    for side in (*checked.entry.values(), *checked.exit.values()):
        found += [r for r in side.values() if plan.is_trade_free(r.node)]
    return found


def _decided_line(plan: Plan, rule: Rule, label: str, moment: _Moment) -> Line:
    """A rule's line; one that reads the portfolio is judged only in its loop."""
    if plan.is_trade_free(rule.node):
        return _line(rule, label, moment)
    return Line(label, _as_written(rule), "judged by the portfolio when it decides", None)


def _render(line: Line) -> list[str]:
    mark = {True: "✓", False: "✗", None: " "}[line.holds]
    rows = [f"  {mark} {line.label}: {line.text}  →  {line.value}"]
    rows += [f"        {text} = {value}" for text, value in line.parts]
    return rows


@dataclass
class TradeState:
    """The trade open on a pair at a candle, as the engine has it: the backtest's trade,
    the stop in force after that close, and the candle each trailing rule became active."""

    trade: Trade
    stop: float
    trailing: dict[str, pd.Timestamp | None]


def trade_state(
    request: BacktestRequest, prepared: Prepared, pair: str, candle: pd.Timestamp
) -> TradeState | None:
    """The engine's own trade and path: the backtest with every market extra (mark prices,
    funding, the exchange's rules), then the trade's path on data that ends at `candle`,
    so nothing later can leak in."""
    plan, feed = prepared.plan, prepared.feed
    result = simulate(plan, feed, prepared.pairs, request.start, extras=prepared.extras)
    trade = next(
        (t for t in result.trades if t.pair == pair and t.entry_time <= candle
         and (t.exit_time is None or t.exit_time > candle)),
        None,
    )  # fmt: skip
    if trade is None:
        return None

    def until(p: str, timeframe: str) -> pd.DataFrame:
        candles = feed(p, timeframe)
        return candles[candles.index <= candle]

    market = prepare_market(plan, until, [pair], extras=prepared.extras)
    data = market.pairs[0]
    path = path_of(plan, fill_model(plan), data, trade, final=False)
    index = data.signals.index
    trailing = {
        name: index[path.activated[name]] if name in path.activated else None
        for name in plan.strategy.trailing
    }
    return TradeState(trade, path.final_stop, trailing)


def _trade_lines(state: TradeState | None) -> list[str]:
    if state is None:
        return ["\ntrade: none open on this pair at this candle (in the full backtest)"]
    trade = state.trade
    lines = [
        f"\ntrade #{trade.id}: {trade.side} since {trade.entry_time}, "
        f"entry {trade.entry_price:.6g}, stake {trade.stake:.2f}",
        f"  initial stop {trade.initial_stop:.6g}; stop after this close {state.stop:.6g}",
    ]
    if trade.liquidation_price is not None:
        lines.append(
            f"  isolated margin {trade.stake:.2f} at {trade.leverage:g}×; "
            f"liquidation price {trade.liquidation_price:.6g}"
        )
    if trade.tags:
        lines.append(f"  tags: {' '.join(trade.tags)}")
    for name, since in state.trailing.items():
        said = f"active since {since}" if since is not None else "not active yet"
        lines.append(f"  trailing {name}: {said}")
    closes = f"  it closes at {trade.exit_time} ({trade.exit_reason})"
    if trade.exit_time is not None:
        closes += f", profit {trade.profit:.2f} ({trade.profit_ratio:.2%})"
    lines.append(closes)
    return lines
