"""`--timerange START-END`: the span of candles a command works on, by candle open time.

Each side is `YYYYMMDD`, `YYYYMMDDHHMM` or epoch seconds, in UTC; either may be empty
(`20240101-` runs to the latest closed candle). START is included, END is not:
`20240101-20240201` is all of January.
"""

from __future__ import annotations

import re

import pandas as pd

from kinetic_rules.errors import ConfigError

_SIDE = re.compile(r"^(\d{8}|\d{12}|\d{10})?$")


def parse_timerange(text: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    head, sep, tail = text.strip().partition("-")
    if not sep or not _SIDE.match(head) or not _SIDE.match(tail) or not (head or tail):
        raise ConfigError(
            f"'{text}' is not a timerange; write START-END such as 20240101-20240901 "
            "(UTC dates, either side may be empty: 20240101-)"
        )
    start, end = _side(head, text), _side(tail, text)
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"timerange '{text}' ends before it starts")
    return start, end


def _side(value: str, text: str) -> pd.Timestamp | None:
    if not value:
        return None
    try:
        if len(value) == 10:
            return pd.Timestamp(int(value), unit="s", tz="UTC")
        fmt = "%Y%m%d" if len(value) == 8 else "%Y%m%d%H%M"
        return pd.Timestamp(pd.to_datetime(value, format=fmt, utc=True))
    except (ValueError, OverflowError):
        raise ConfigError(f"timerange '{text}': '{value}' is not a date") from None
