"""Shorthands for declaring functions, so each family module reads as a table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from kinetic_rules.functions.registry import (
    MAX_CANDLES,
    REGISTRY,
    Arg,
    ArgKind,
    Array,
    ConstArgs,
    Function,
    StreamFactory,
    UnitRule,
)
from kinetic_rules.units import Unit

Warmup = Callable[[ConstArgs], int]


def define(
    name: str,
    category: str,
    doc: str,
    args: tuple[Arg, ...],
    impl: Callable[..., Array],
    warmup: Warmup,
    *,
    returns: Literal["number", "bool"] = "number",
    inputs: tuple[str, ...] = (),
    talib: str | None = None,
    example: str = "",
    stream: StreamFactory | None = None,
    unit: UnitRule | None = None,
    alike: tuple[tuple[str, ...], ...] = (),
    arg_units: Mapping[str, Unit] | None = None,
) -> Function:
    """Register a function whose warm-up sees every constant argument, defaults filled in.

    The checker may pass only the arguments a strategy wrote; filling defaults here
    keeps each warm-up rule a one-liner over named arguments. `unit` is what the result
    is measured in (a Unit, or the name of the argument whose unit it takes); `alike`
    names arguments that must share a unit; `arg_units` gives constant arguments theirs.
    """
    names = {a.name for a in args}
    for arg in [*(n for group in alike for n in group), *(arg_units or {})]:
        if arg not in names:
            raise ValueError(f"{name}: a unit is declared for an argument it lacks: {arg}")
    if isinstance(unit, str) and unit not in names:
        raise ValueError(f"{name}: its unit follows an argument it does not have: {unit}")
    defaults = {a.name: a.default for a in args if a.default is not None}

    def filled(given: ConstArgs) -> int:
        return max(0, int(warmup({**defaults, **given})))

    filled.__doc__ = warmup.__doc__  # the rule in words, shown in docs/functions.md

    return REGISTRY.register(
        Function(
            name=name,
            category=category,
            doc=doc,
            args=args,
            returns=returns,
            impl=impl,
            warmup=filled,
            inputs=inputs,
            talib=talib,
            example=example,
            stream=stream,
            unit=unit,
            alike=alike,
            arg_units=dict(arg_units or {}),
        )
    )


def series(name: str, doc: str) -> Arg:
    return Arg(name, ArgKind.SERIES, doc)


def condition(name: str, doc: str) -> Arg:
    return Arg(name, ArgKind.BOOL_SERIES, doc)


def whole(name: str, doc: str, default: int | None = None, minimum: int = 1) -> Arg:
    """A count of candles: at least `minimum`, at most MAX_CANDLES."""
    return Arg(name, ArgKind.INT, doc, default=default, minimum=minimum, maximum=MAX_CANDLES)


def window(name: str, doc: str, default: int | None = None, minimum: int = 1) -> Arg:
    """A count of candles or a duration: at least `minimum`, at most MAX_CANDLES."""
    return Arg(name, ArgKind.WINDOW, doc, default=default, minimum=minimum, maximum=MAX_CANDLES)


def number(
    name: str,
    doc: str,
    default: float | None = None,
    minimum: float | None = None,
    *,
    maximum: float | None = None,
) -> Arg:
    return Arg(name, ArgKind.NUMBER, doc, default=default, minimum=minimum, maximum=maximum)


def table(
    name: str, doc: str, *, increasing: bool = False, same_length_as: str | None = None
) -> Arg:
    """A constant list, e.g. the thresholds of a step table."""
    return Arg(name, ArgKind.LIST, doc, increasing=increasing, same_length_as=same_length_as)


def source(doc: str = "the numbers to work on, e.g. close") -> Arg:
    return series("source", doc)


def period(default: int | None, doc: str = "how many candles to look back") -> Arg:
    return whole("period", doc, default)


def size(args: ConstArgs, name: str) -> int:
    """A whole-number constant argument, for warm-up rules."""
    value = args[name]
    if isinstance(value, tuple):
        raise TypeError(f"argument {name} is a list, not a number of candles")
    return int(value)


def times(name: str, factor: int, extra: int = 0) -> Warmup:
    """Warm-up of a recursive average: `factor` × its period, enough for the seed to fade."""

    def warmup(args: ConstArgs) -> int:
        return factor * size(args, name) + extra

    warmup.__doc__ = _rule(f"{factor} × {name}", extra)
    return warmup


def of(name: str, extra: int = 0) -> Warmup:
    """Warm-up of a windowed function: the window itself (plus `extra`)."""

    def warmup(args: ConstArgs) -> int:
        return size(args, name) + extra

    warmup.__doc__ = _rule(name, extra)
    return warmup


def const(candles: int) -> Warmup:
    def warmup(_: ConstArgs) -> int:
        return candles

    warmup.__doc__ = f"{candles}"
    return warmup


def _rule(base: str, extra: int) -> str:
    return f"{base} + {extra}" if extra else base
