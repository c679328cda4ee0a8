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

from kinetic_rules.backtest.runner import BacktestRequest, prepare, simulate
from kinetic_rules.compile.evaluate import Evaluator, PairSignals
from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.trade_eval import evaluate_span
from kinetic_rules.engine.fills import FillModel
from kinetic_rules.engine.model import Trade
from kinetic_rules.engine.paths import ExitRules, trade_path
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


def _operands(node: ast.Node) -> list[ast.Node]:
    """The sub-expressions worth showing: both sides of comparisons, parts of and/or."""
    match node:
        case ast.Compare(first=first, rest=rest):
            return [first, *(operand for _, operand in rest)]
        case ast.Binary(op="and" | "or", left=left, right=right):
            return [left, right, *_operands(left), *_operands(right)]
        case ast.Unary(op="not", operand=operand):
            return [operand, *_operands(operand)]
    return []


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
    for operand in dict.fromkeys(_operands(rule.node)):  # each operand once, in order
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
        o for r in rules for o in _operands(r.node) if _computed(o) and o not in plan.trade_free
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
    for side, side_rules in checked.entry.items():
        if not side_rules:
            continue
        lines = [_decided_line(plan, r, n, moment) for n, r in side_rules.items()]
        market = [line for line in lines if line.holds is not None]
        held = sum(bool(line.holds) for line in market)
        verdict = "SIGNAL" if held == len(market) else "no signal"
        if verdict == "SIGNAL" and len(market) < len(lines):
            verdict += " if the portfolio allows"
        out.append(f"\nentry {side}: {verdict} — {held} of {len(market)} conditions hold")
        for line in lines:
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
        out += _trade_state(request, prepared.pairs, plan, prepared.feed, pair, index[position])
    return "\n".join(out)


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


def _trade_state(
    request: BacktestRequest, pairs: list[str], plan: Plan, feed: object, pair: str,
    candle: pd.Timestamp,
) -> list[str]:  # fmt: skip
    result = simulate(plan, feed, pairs, request.start)  # type: ignore[arg-type]
    open_trade = next(
        (t for t in result.trades if t.pair == pair and t.entry_time <= candle
         and (t.exit_time is None or t.exit_time > candle)),
        None,
    )  # fmt: skip
    if open_trade is None:
        return ["\ntrade: none open on this pair at this candle (in the full backtest)"]
    stop, trailing = _stop_state(plan, feed, open_trade, candle)
    lines = [
        f"\ntrade #{open_trade.id}: {open_trade.side} since {open_trade.entry_time}, "
        f"entry {open_trade.entry_price:.6g}, stake {open_trade.stake:.2f}",
        f"  initial stop {open_trade.initial_stop:.6g}; stop after this close {stop:.6g}",
    ]
    if open_trade.liquidation_price is not None:
        lines.append(
            f"  isolated margin {open_trade.stake:.2f} at {open_trade.leverage:g}×; "
            f"liquidation price {open_trade.liquidation_price:.6g}"
        )
    if open_trade.tags:
        lines.append(f"  tags: {' '.join(open_trade.tags)}")
    for name, since in trailing.items():
        state = f"active since {since}" if since is not None else "not active yet"
        lines.append(f"  trailing {name}: {state}")
    lines.append(f"  it closes at {open_trade.exit_time} ({open_trade.exit_reason})")
    return lines


def _stop_state(
    plan: Plan, feed: object, trade: Trade, candle: pd.Timestamp
) -> tuple[float, dict[str, pd.Timestamp | None]]:
    """The stop in force after `candle`, and since when each trailing rule has been active:
    the trade's path on data that ends at that candle, so nothing later can leak in."""
    candles = feed(trade.pair, plan.timeframe)  # type: ignore[operator]
    cut = candles[candles.index <= candle]
    prices = {k: cut[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close")}
    signals = Evaluator(plan, lambda p, tf: feed(p, tf)[lambda f: f.index <= candle]).evaluate(  # type: ignore[operator]
        trade.pair
    )
    checked = plan.strategy
    rules = ExitRules(checked.exit.get(trade.side, {}), checked.trailing, [], [])
    entry = int(signals.index.searchsorted(trade.entry_time))
    path = trade_path(plan, signals, prices, entry, trade.side, trade.entry_price,
                      trade.initial_stop, rules, _no_limits(), final=False)  # fmt: skip
    sign = 1.0 if trade.side == "long" else -1.0
    profit = sign * (prices["close"][entry:] / trade.entry_price - 1.0)
    env = {
        "entry_price": trade.entry_price, "side": sign, "profit": profit,
        "max_profit": np.maximum.accumulate(profit), "stop": trade.initial_stop,
        "bars_held": np.arange(len(profit), dtype=np.float64),
    }  # fmt: skip
    since: dict[str, pd.Timestamp | None] = {}
    for name, rule in checked.trailing.items():
        active = evaluate_span(plan, rule.activate.node, signals, entry, len(prices["close"]), env)
        hits = np.flatnonzero(active.astype(bool))
        since[name] = signals.index[entry + int(hits[0])] if len(hits) else None
    return path.final_stop, since


def _no_limits() -> FillModel:
    """Fill prices do not matter for a stop's level: plain market fills."""
    return FillModel(0.0, 0.0, False, False, 1, 1)
