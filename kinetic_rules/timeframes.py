"""Timeframes and durations: the one place that knows what `5m`, `24h` and `1w` mean.

Every stage (language, data, engine) converts through here, so a timeframe is
always an exact number of seconds and a duration window is always an exact
number of candles or an error.
"""

from __future__ import annotations

import re

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")

# Timeframes candle data may be stored and traded in; what ccxt exchanges commonly offer.
KNOWN_TIMEFRAMES = (
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
)


def parse_duration(text: str) -> int:
    """Seconds in a duration such as `24h`; ValueError with a readable message otherwise."""
    match = _PATTERN.match(text.strip())
    if not match:
        raise ValueError(
            f"'{text}' is not a duration; write a whole number and a unit "
            "(s, m, h, d or w), e.g. 24h"
        )
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def timeframe_seconds(timeframe: str) -> int:
    if timeframe not in KNOWN_TIMEFRAMES:
        raise ValueError(
            f"unknown timeframe '{timeframe}'; known timeframes: {', '.join(KNOWN_TIMEFRAMES)}"
        )
    return parse_duration(timeframe)


def candles_in(duration_seconds: int, timeframe: str) -> int:
    """How many candles of `timeframe` a duration spans; it must divide evenly."""
    step = timeframe_seconds(timeframe)
    if duration_seconds % step:
        raise ValueError(
            f"{format_duration(duration_seconds)} is not a whole number of {timeframe} candles"
        )
    return duration_seconds // step


_HUMAN_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def format_duration(seconds: float, parts: int | None = None) -> str:
    """A duration in words a reader need not convert: `30 days 3 hours`, not `43380m`.
    With `parts`, only that many units from the largest, rounded to the last one shown."""
    seconds = round(seconds)
    if seconds <= 0:
        return "0 seconds" if seconds == 0 else f"-{format_duration(-seconds, parts)}"
    if parts is not None:
        largest = next(i for i, (_, size) in enumerate(_HUMAN_UNITS) if seconds >= size)
        smallest = _HUMAN_UNITS[min(largest + parts - 1, len(_HUMAN_UNITS) - 1)][1]
        seconds = max(smallest, round(seconds / smallest) * smallest)
    words = []
    for name, size in _HUMAN_UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            words.append(f"{count} {name}{'' if count == 1 else 's'}")
    return " ".join(words[:parts] if parts is not None else words)
