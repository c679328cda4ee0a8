"""Value types a strategy file uses outside expressions: fractions, durations, expressions.

Each accepts what a person naturally writes (`1%`, `0.01`, `10m`) and says plainly
what it wanted otherwise; the JSON Schema shows the same shapes to editors.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from kinetic_rules.timeframes import KNOWN_TIMEFRAMES, parse_duration

_PERCENT = re.compile(r"^\s*(-?[0-9]+(\.[0-9]+)?|-?\.[0-9]+)\s*%\s*$")


def _fraction(value: Any) -> float:
    """A number or a percentage; never NaN or infinite, which would slip past every bound."""
    number = _any_fraction(value)
    if not math.isfinite(number):
        raise ValueError("expected a finite number or a percentage such as 1.5%")
    return number


def _any_fraction(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number or a percentage such as 1.5%")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match:
            return float(match.group(1)) / 100.0
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError("expected a number or a percentage such as 1.5%")


def _duration(value: Any) -> int:
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError("expected a duration such as 10m, 4h or 1d")


MONITOR_BOUNDS = (1, 3600)  # seconds between two looks of the position monitor: 1s to 1h


def monitor_seconds(value: Any) -> int:
    """`off` (YAML reads a bare off as false) is 0, no monitor; else 1s to 1h, in seconds."""
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return 0
    least, most = MONITOR_BOUNDS
    wanted = f"off, or a duration from {least}s to {most // 3600}h such as 5s"
    try:
        seconds = _duration(value)
    except ValueError:
        raise ValueError(f"expected {wanted}") from None
    if not least <= seconds <= most:
        raise ValueError(f"expected {wanted}, not {value}")
    return seconds


def _timeframe(value: Any) -> str:
    if isinstance(value, str) and value in KNOWN_TIMEFRAMES:
        return value
    raise ValueError(f"expected a timeframe, one of: {', '.join(KNOWN_TIMEFRAMES)}")


def _expression(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected a finite number (this one is NaN, infinite or too large)")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value
    raise ValueError("expected an expression (text such as `close > ema(close, 50)`)")


Fraction = Annotated[
    float,
    BeforeValidator(_fraction),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": r"^\s*-?([0-9]+(\.[0-9]+)?|\.[0-9]+)\s*%\s*$"},
            ],
            "description": "A fraction: 0.015 or 1.5%.",
        }
    ),
]

Duration = Annotated[
    int,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[1-9][0-9]{0,5}[smhdw]$",
            "description": "A duration: a whole number and a unit (s, m, h, d, w), e.g. 10m.",
        }
    ),
]

MonitorEvery = Annotated[
    int,
    BeforeValidator(monitor_seconds),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^[1-9][0-9]{0,3}[smh]$"},
                {"const": "off"},
                {"const": False},
            ],
            "description": "How often: a duration from 1s to 1h, e.g. 5s; or off.",
        }
    ),
]

Timeframe = Annotated[
    str,
    BeforeValidator(_timeframe),
    WithJsonSchema({"type": "string", "enum": list(KNOWN_TIMEFRAMES)}),
]


def expression_schema(kind: str) -> dict[str, Any]:
    return {
        "type": ["string", "number", "boolean"],
        "description": f"An expression giving a {kind}. See docs/language.md. Numbers carry "
        "units: open, high, low and close are prices, volume is in the base asset, "
        "quote_volume in the quote currency, 2% is the ratio 0.02, rsi and adx are on a "
        "0–100 scale; docs/functions.md gives each function's unit.",
    }


Condition = Annotated[
    str, BeforeValidator(_expression), WithJsonSchema(expression_schema("condition (true/false)"))
]
Value = Annotated[str, BeforeValidator(_expression), WithJsonSchema(expression_schema("number"))]

Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
