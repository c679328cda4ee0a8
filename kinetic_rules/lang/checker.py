"""Check a whole strategy: every expression of every section, in its own scope.

Collects every error (and warnings for unused definitions) before giving up, so a
user fixes a file in one pass. The result is plain data for the compiler.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Mapping

from kinetic_rules.errors import Diagnostic, Span, StrategyError
from kinetic_rules.lang import ast
from kinetic_rules.lang.bounds import stop_past_liquidation
from kinetic_rules.lang.checked import (
    CheckedStrategy,
    ParamValue,
    Rule,
    ScannerRule,
    TrailRule,
)
from kinetic_rules.lang.model_sources import model_sources
from kinetic_rules.lang.names import (
    CANDLE_FIELDS,
    CONTEXT_NAMES,
    LIVE_NAMES,
    RESERVED,
    Scope,
    stored_inputs,
)
from kinetic_rules.lang.parser import parse
from kinetic_rules.lang.resolve import BOOL, NUMBER, Definition, Resolver, Symbols, Typed
from kinetic_rules.lang.unit_check import UnitChecker, param_units, set_unit_problem
from kinetic_rules.patterns import MAX_PATTERNS, PatternError, compile_pattern
from kinetic_rules.spec.ablation import ablation_problems
from kinetic_rules.spec.loader import LoadedStrategy, PathKey
from kinetic_rules.spec.models import Param
from kinetic_rules.spec.types import _fraction
from kinetic_rules.units import Unit


def check(loaded: LoadedStrategy, overrides: Mapping[str, str] | None = None) -> CheckedStrategy:
    """Check a loaded strategy; raise StrategyError listing every error found."""
    return _Checker(loaded, overrides or {}).run()


class _Checker:
    def __init__(self, loaded: LoadedStrategy, overrides: Mapping[str, str]) -> None:
        self.loaded = loaded
        self.spec = loaded.strategy
        self.positions = loaded.positions
        self.diagnostics: list[Diagnostic] = []
        self.overrides = overrides

    def report(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    def error(self, path: PathKey, code: str, message: str, hint: str | None = None) -> None:
        self.report(Diagnostic("error", code, message, self._key_span(path), hint))

    def _key_span(self, path: PathKey) -> Span:
        return self.positions.keys.get(path, self.positions.span(path))

    # ------------------------------------------------------------------------------------
    def run(self) -> CheckedStrategy:
        spec = self.spec
        params = self._params()
        used: set[str] = set()
        symbols = Symbols(
            params=params,
            declared_params=frozenset(spec.params),
            definitions=self._definitions(),
            regime_classes=tuple(spec.regime.classes) if spec.regime else (),
            regime_tables=frozenset(spec.regime.tables) if spec.regime else frozenset(),
            informative_timeframes=frozenset(spec.informative.timeframes)
            if spec.informative
            else None,
            informative_pairs=frozenset(spec.informative.pairs) if spec.informative else None,
            models=model_sources(
                spec.models, spec.timeframe, params, self._parse, self.error, used
            ),
            used=used,
        )
        self.resolver = Resolver(symbols, self.report)
        trees = {name: d.tree for name, d in symbols.definitions.items()}
        units = param_units(spec.params, self.positions, self.report)
        tables = symbols.regime_tables
        self.units = UnitChecker(trees, units, tables, self.report)
        out = CheckedStrategy(spec=spec, params=params)
        self._named(out, symbols)
        self._sections(out)
        self._regime(out)
        self._models(symbols)
        self._set_units()
        for path, message, hint in ablation_problems(spec):
            self.error(path, "ablation", message, hint)
        if not any(d.severity == "error" for d in self.diagnostics):
            self._unused(symbols, out)  # after an error, "unused" is mostly its echo
        self.diagnostics = _unique(self.diagnostics)
        if any(d.severity == "error" for d in self.diagnostics):
            raise StrategyError(self.diagnostics)
        out.warnings = self.diagnostics
        return out

    def _params(self) -> dict[str, ParamValue]:
        values: dict[str, ParamValue] = {}
        for name, param in self.spec.params.items():
            path: PathKey = ("params", name)
            value = self._param_value(path, param, param.value)
            if value is not None:
                values[name] = value
        for name, text in self.overrides.items():
            if name not in self.spec.params:
                near = difflib.get_close_matches(name, list(self.spec.params), n=1)
                hint = f"did you mean {near[0]}?" if near else "params: " + ", ".join(values)
                self.report(Diagnostic("error", "set", f"--set {name}: no such param", hint=hint))
                continue
            value = self._param_value(("params", name), self.spec.params[name], text, cli=True)
            if value is not None:
                values[name] = value
        return values

    def _param_value(
        self, path: PathKey, param: Param, raw: object, cli: bool = False
    ) -> ParamValue | None:
        where = f"--set {path[-1]}={raw}: " if cli else ""
        span = Span(None, 0, 0) if cli else self.positions.span((*path, "value"))

        def fail(message: str) -> None:
            self.report(Diagnostic("error", "param", where + message, span))

        if param.choices is not None:
            if str(raw) not in param.choices:
                fail(f"'{raw}' is not one of {', '.join(param.choices)}")
                return None
            return str(raw)
        if isinstance(param.value, bool):
            text = str(raw).lower()
            if text not in ("true", "false"):
                fail("expected true or false")
                return None
            return text == "true"
        try:
            number = _fraction(raw)
        except ValueError:
            fail(f"'{raw}' is not a number")
            return None
        if isinstance(param.value, int) and not number.is_integer():
            fail(f"{number:g} is not a whole number")
            return None
        if param.min is not None and number < param.min:
            fail(f"{number:g} is below the smallest allowed value {param.min:g}")
            return None
        if param.max is not None and number > param.max:
            fail(f"{number:g} is above the largest allowed value {param.max:g}")
            return None
        return int(number) if isinstance(param.value, int) else number

    def _parse(self, path: PathKey, text: str) -> ast.Node | None:
        try:
            return parse(self.positions.snippet(path, text))
        except StrategyError as problem:
            self.diagnostics.extend(problem.diagnostics)
            return None

    def _definitions(self) -> dict[str, Definition]:
        found: dict[str, Definition] = {}
        for section, kind in (("indicators", NUMBER), ("conditions", BOOL)):
            for name, text in getattr(self.spec, section).items():
                path: PathKey = (section, name)
                if name in CANDLE_FIELDS or name in CONTEXT_NAMES or name in RESERVED:
                    self.error(path, "name", f"'{name}' is a built-in name; choose another")
                    continue
                if name in found:
                    self.error(path, "name", f"'{name}' is defined in indicators and conditions")
                    continue
                found[name] = Definition(name, kind, self._parse(path, text))
        return found

    def rule(
        self, path: PathKey, text: str, kind: str, scope: Scope, unit: Unit | None = None
    ) -> Rule | None:
        tree = self._parse(path, text)
        if tree is None:
            return None
        # Live-only inputs may be read anywhere market data may; backtests see them undefined.
        typed = self.resolver.resolve(tree, scope | Scope.LIVE, self.spec.timeframe)
        return self._finish(path, tree, typed, kind, unit)

    def _finish(
        self,
        path: PathKey,
        tree: ast.Node,
        typed: Typed | None,
        kind: str,
        unit: Unit | None = None,
    ) -> Rule | None:
        if typed is None:
            return None
        if typed.kind != kind:
            want = "a condition (true/false)" if kind == BOOL else "a number"
            got = "a condition" if typed.kind == BOOL else f"a {typed.kind}"
            hint = "compare it, e.g. x > 0" if kind == BOOL else None
            self.report(
                Diagnostic("error", "type", f"this must give {want}, not {got}", tree.span, hint)
            )
            return None
        label = ".".join(str(p) for p in path)
        self.units.check(tree, unit, label)
        return Rule(label, typed.node, kind, tree.span)

    def _named(self, out: CheckedStrategy, symbols: Symbols) -> None:
        for name in _dependency_order(symbols.definitions):
            definition = symbols.definitions[name]
            section = "indicators" if definition.kind == NUMBER else "conditions"
            if definition.tree is None:
                continue
            scope = Scope.MARKET | Scope.LIVE
            typed = self.resolver.resolve(definition.tree, scope, self.spec.timeframe)
            rule = self._finish((section, name), definition.tree, typed, definition.kind)
            if rule is not None:
                getattr(out, section)[name] = rule

    def _blacklist(self, patterns: list[str]) -> None:
        if len(patterns) > MAX_PATTERNS:
            message = f"{len(patterns)} blacklist patterns; at most {MAX_PATTERNS} are allowed"
            hint = "combine them with | into fewer patterns"
            self.error(("scanner", "blacklist", MAX_PATTERNS), "regex", message, hint)
            return
        for index, pattern in enumerate(patterns):
            try:
                compile_pattern(pattern)
            except PatternError as problem:
                self.error(("scanner", "blacklist", index), "regex", str(problem))

    def _sections(self, out: CheckedStrategy) -> None:
        spec, trade = self.spec, Scope.MARKET | Scope.TRADE
        if spec.scanner:
            for index, step in enumerate(spec.scanner.steps):
                path: PathKey = ("scanner", "steps", index, "by" if step.top else "filter")
                text = step.by if step.top else step.filter
                kind = NUMBER if step.top else BOOL
                rule = self.rule(path, text or "", kind, Scope.MARKET | Scope.LIVE)
                if rule is not None:
                    stored = stored_inputs(spec.market.type)  # backtests have these
                    live = any(
                        isinstance(n, ast.Name) and n.id in LIVE_NAMES - stored
                        for n in rule.node.walk()
                    )
                    out.scanner.append(
                        ScannerRule(step.name or f"step {index + 1}", step.top, rule, live)
                    )
            self._blacklist(spec.scanner.blacklist)
        # Protections and entries are decided by the portfolio, which knows its own state.
        portfolio = Scope.MARKET | Scope.PORTFOLIO
        for name, protection in spec.protections.items():
            self._put(
                out.protections,
                name,
                ("protections", name, "active"),
                protection.active,
                BOOL,
                portfolio,
            )
        for side in ("long", "short"):
            for name, text in getattr(spec.entry, side).items():
                rules = out.entry.setdefault(side, {})
                path = ("entry", side, name)
                self._put(rules, name, path, text, BOOL, portfolio | Scope.ENTRY)
            for name, text in getattr(spec.exit, side).items():
                rules = out.exit.setdefault(side, {})
                self._put(rules, name, ("exit", side, name), text, BOOL, trade)
        for name, text in spec.entry.tags.items():
            self._put(out.tags, name, ("entry", "tags", name), text, BOOL, Scope.MARKET)
        cooldown = spec.entry.cooldown
        if cooldown is not None and cooldown.tag is not None and not spec.entry.tags:
            self.error(
                ("entry", "cooldown", "tag"),
                "cooldown",
                "a cooldown per tag needs tags",
                "name the setups under entry.tags",
            )
        if spec.entry.priority is not None:
            out.priority = self.rule(
                ("entry", "priority"), spec.entry.priority, NUMBER, Scope.MARKET
            )
        if spec.stoploss is not None:
            out.stop_initial = self.rule(
                ("stoploss", "initial"), spec.stoploss.initial, NUMBER, trade, Unit.PRICE
            )
            for name, stop_rule in spec.stoploss.trailing.items():
                base: PathKey = ("stoploss", "trailing", name)
                activate = self.rule((*base, "activate"), stop_rule.activate, BOOL, trade)
                level = self.rule((*base, "level"), stop_rule.level, NUMBER, trade, Unit.PRICE)
                if activate and level:
                    out.trailing[name] = TrailRule(activate, level)
        for name, take in spec.take_profit.items():
            self._put(out.take_profit, name, ("take_profit", name, "when"), take.when, BOOL, trade)
        if spec.sizing.stake is not None:
            scope = Scope.MARKET | Scope.SIZING
            out.stake = self.rule(("sizing", "stake"), spec.sizing.stake, NUMBER, scope, Unit.RATIO)
        if spec.leverage is not None:
            out.leverage = self.rule(("leverage",), spec.leverage, NUMBER, Scope.MARKET)
        if spec.market.type == "spot" and spec.entry.short:
            self.error(
                ("entry", "short"),
                "market",
                "spot markets cannot be shorted",
                "set market.type: futures",
            )
        if sum(t.close for t in spec.take_profit.values()) > 1.0 + 1e-9:
            self.error(
                ("take_profit",), "take-profit", "take-profits close more than 100% in total"
            )
        past = stop_past_liquidation(spec, out.leverage.node if out.leverage else None)
        if past is not None:
            span = self._key_span(("stoploss", "max_distance"))
            hint = "lower stoploss.max_distance or the leverage"
            self.report(Diagnostic("warning", "liquidation", past, span, hint))

    def _put(
        self, target: dict[str, Rule], name: str, path: PathKey, text: str, kind: str, scope: Scope
    ) -> None:
        rule = self.rule(path, text, kind, scope)
        if rule is not None:
            target[name] = rule

    def _regime(self, out: CheckedStrategy) -> None:
        regime = self.spec.regime
        if regime is None:
            return
        names = list(regime.classes)
        for index, (name, text) in enumerate(regime.classes.items()):
            path: PathKey = ("regime", "classes", name)
            if text.strip() == "otherwise":
                if index != len(names) - 1:
                    self.error(path, "regime", "`otherwise` must be the last regime")
                out.regime.append(
                    (
                        name,
                        Rule(
                            ".".join(map(str, path)),
                            ast.Bool(True),
                            BOOL,
                            self.positions.span(path),
                        ),
                    )
                )
                continue
            rule = self.rule(path, text, BOOL, Scope.MARKET)
            if rule is not None:
                out.regime.append((name, rule))
        for section in ("max_open_trades",):
            for name in getattr(regime, section):
                if name not in regime.classes:
                    self._unknown_class(("regime", section, name), name, names)
        for table, values in regime.tables.items():
            for name in values:
                if name not in regime.classes:
                    self._unknown_class(("regime", "tables", table, name), name, names)
            missing = [n for n in names if n not in values]
            if missing:
                self.error(
                    ("regime", "tables", table),
                    "regime",
                    f"table '{table}' has no value for {', '.join(missing)}",
                )

    def _unknown_class(self, path: PathKey, name: str, names: list[str]) -> None:
        near = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean '{near[0]}'?" if near else f"regimes: {', '.join(names)}"
        self.error(path, "unknown-regime", f"no regime '{name}'", hint)

    def _set_units(self) -> None:
        """`--set name=2%` on a param measured in points or percent points is a mistake."""
        for name, text in self.overrides.items():
            if name not in self.spec.params:
                continue
            problem = set_unit_problem(name, text, self.units.param_unit(name))
            if problem is not None:
                message, hint = problem
                self.report(Diagnostic("error", "unit", message, hint=hint))

    def _models(self, symbols: Symbols) -> None:
        """Check every model's features and label (also of models no rule reads yet) and
        their units; a model no rule reads is worth a warning."""
        for name, source in symbols.models.items():
            used = "model:" + name in symbols.used
            trees = [tree for _, tree in source.features] + [source.label]
            for tree in trees:
                if tree is not None:
                    self.units.check(tree, None, f"models.{name}")
            call = ast.Call("predict", (ast.Name(name),))  # its errors, if no rule met them
            self.resolver.resolve(call, Scope.MARKET, self.spec.timeframe)
            if not used:
                span = self._key_span(("models", name))
                message = f"model '{name}' is declared but no rule reads it"
                hint = f"read it with predict({name}), or remove it"
                self.report(Diagnostic("warning", "unused", message, span, hint))

    def _unused(self, symbols: Symbols, out: CheckedStrategy) -> None:
        for name, definition in symbols.definitions.items():
            if name in symbols.used:
                continue
            section = "indicators" if definition.kind == NUMBER else "conditions"
            span = self._key_span((section, name))
            message = f"'{name}' is defined but never used"
            self.report(Diagnostic("warning", "unused", message, span, "use it or remove it"))
        for name in symbols.params:
            if "$" + name not in symbols.used:
                span = self._key_span(("params", name))
                self.report(Diagnostic("warning", "unused", f"param ${name} is never used", span))


def _dependency_order(definitions: Mapping[str, Definition]) -> list[str]:
    """Definitions, each after those it uses (file order otherwise; cycles last).

    Resolving in this order, every definition finds the ones it uses already resolved,
    so even a chain of thousands stays one level deep in the resolver.
    """
    uses = {
        name: {
            node.id
            for node in (d.tree.walk() if d.tree is not None else ())
            if isinstance(node, ast.Name) and node.id in definitions and node.id != name
        }
        for name, d in definitions.items()
    }
    users: dict[str, list[str]] = {name: [] for name in definitions}
    for name, used in uses.items():
        for other in used:
            users[other].append(name)
    position = {name: index for index, name in enumerate(definitions)}
    waiting = {name: len(used) for name, used in uses.items()}
    ready = [position[name] for name in definitions if not waiting[name]]
    names = list(definitions)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]  # the earliest in the file first
        order.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if not waiting[user]:
                heapq.heappush(ready, position[user])
    placed = set(order)
    return order + [name for name in definitions if name not in placed]


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """A definition used in several places reports its own error once."""
    seen: set[tuple[str, int, str, str]] = set()
    kept = []
    for d in diagnostics:
        key = (d.span.path, d.span.start, d.code, d.message)
        if key not in seen:
            seen.add(key)
            kept.append(d)
    return kept
