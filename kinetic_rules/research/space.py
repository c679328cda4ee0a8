"""The search space: which declared params a study varies, and within which values.

Every searched param must be bounded by the file itself (min and max, or a list of choices,
or a true/false value): the search never invents a range. Integer params stay integers; a
param's `step` spaces the values tried. A value is handed to the strategy the same way
`--set` hands one, so the checker judges it exactly as it judges a person's override.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from kinetic_rules.errors import Diagnostic, Source, Span, StrategyError
from kinetic_rules.spec.loader import LoadedStrategy
from kinetic_rules.spec.models import Param
from kinetic_rules.spec.types import _fraction

GRID_POINTS = 5  # values a grid tries for a float param that declares no step

Value = float | int | bool | str


@dataclass(frozen=True)
class Dimension:
    """One searched param: a number range (integer or not, with an optional step) or a
    finite list of choices (words, or true/false)."""

    name: str
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    integer: bool = False
    choices: tuple[Value, ...] | None = None
    percent: bool = False  # written as a percentage in the file: written back the same way

    def grid(self) -> list[Value]:
        """Every value a grid search tries, lowest first."""
        if self.choices is not None:
            return list(self.choices)
        if self.step is None and not self.integer:
            width = (self.high - self.low) / (GRID_POINTS - 1)
            return [self.low + i * width for i in range(GRID_POINTS)]
        step = self.step or 1.0
        count = round((self.high - self.low) / step)
        values: list[Value] = [self.low + i * step for i in range(count + 1)]
        return [round(float(v)) for v in values] if self.integer else values


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def grid_size(self) -> int:
        return math.prod(len(d.grid()) for d in self.dimensions)


def override_text(value: Value) -> str:
    """A value as `--set` would spell it (repr keeps every digit of a float)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def overrides(values: dict[str, Value]) -> dict[str, str]:
    return {name: override_text(value) for name, value in values.items()}


def search_space(loaded: LoadedStrategy, selected: list[str] | None) -> SearchSpace:
    """The params to search: those named (`--params a,b`), else every bounded one.

    An unknown name, or a named param without bounds, is a positioned error raised before
    any trial runs."""
    params = loaded.strategy.params
    problems: list[Diagnostic] = []
    if selected:
        flag = Source("--params", ",".join(selected))
        offset = 0
        for name in selected:
            if name not in params:
                near = difflib.get_close_matches(name, list(params), n=1)
                hint = f"did you mean {near[0]}?" if near else _declared(list(params))
                span = Span(flag, offset, offset + len(name))
                problems.append(Diagnostic("error", "param", f"no param named {name}", span, hint))
            offset += len(name) + 1
        names = list(dict.fromkeys(selected))
    else:
        names = [name for name, param in params.items() if _bounded(param)]
    if problems:
        raise StrategyError(problems)
    dimensions: list[Dimension] = []
    for name in names:
        param = params[name]
        if not _bounded(param):
            span = loaded.positions.keys.get(("params", name), loaded.positions.span(("params",)))
            problems.append(
                Diagnostic(
                    "error",
                    "param",
                    f"param {name} has no bounds to search within",
                    span,
                    "give it min and max (and optionally step), or leave it out of --params",
                )
            )
            continue
        dimensions.append(_dimension(name, param))
    if problems:
        raise StrategyError(problems)
    if not dimensions:
        span = loaded.positions.keys.get(("params",), Span(loaded.source, 0, 0))
        raise StrategyError(
            [
                Diagnostic(
                    "error",
                    "param",
                    "no param to search: none declares min and max, choices, or true/false",
                    span,
                    "declare a param with value, min and max under `params:`",
                )
            ]
        )
    return SearchSpace(tuple(dimensions))


def _declared(names: list[str]) -> str:
    return "params: " + ", ".join(names) if names else "the file declares no params"


def _bounded(param: Param) -> bool:
    if param.choices is not None or isinstance(param.value, bool):
        return True
    return param.min is not None and param.max is not None and param.max > param.min


def _dimension(name: str, param: Param) -> Dimension:
    if param.choices is not None:
        return Dimension(name, choices=tuple(param.choices))
    if isinstance(param.value, bool):
        return Dimension(name, choices=(False, True))
    assert param.min is not None and param.max is not None
    integer = isinstance(param.value, int)
    percent = isinstance(param.value, str) and param.value.strip().endswith("%")
    low, high = param.min, param.max
    if integer:
        low, high = float(math.ceil(low)), float(math.floor(high))
    return Dimension(name, low, high, param.step, integer, None, percent)


def current_values(loaded: LoadedStrategy, space: SearchSpace) -> dict[str, Value]:
    """The file's own values of the searched params (the study's first trial)."""
    values: dict[str, Value] = {}
    for dimension in space.dimensions:
        raw = loaded.strategy.params[dimension.name].value
        if dimension.choices is not None:
            values[dimension.name] = raw if isinstance(raw, bool) else str(raw)
        elif dimension.integer:
            values[dimension.name] = int(raw)
        else:
            values[dimension.name] = _fraction(raw)
    return values
