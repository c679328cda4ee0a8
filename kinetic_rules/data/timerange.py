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


# Candle times are nanoseconds since 1970 (pandas' range ends in 2262); a date outside
# these bounds is a typo, and would overflow deep inside a run.
EARLIEST = pd.Timestamp("1970-01-01", tz="UTC")
LATEST = pd.Timestamp("2200-01-01", tz="UTC")


def supported(time: pd.Timestamp) -> bool:
    """Whether a time given on the command line lies where candles can be."""
    return not pd.isna(time) and EARLIEST <= time < LATEST


def _side(value: str, text: str) -> pd.Timestamp | None:
    if not value:
        return None
    try:
        if len(value) == 10:
            time = pd.Timestamp(int(value), unit="s", tz="UTC")
        else:
            fmt = "%Y%m%d" if len(value) == 8 else "%Y%m%d%H%M"
            time = pd.Timestamp(pd.to_datetime(value, format=fmt, utc=True))
    except (ValueError, OverflowError):
        raise ConfigError(f"timerange '{text}': '{value}' is not a date") from None
    if not supported(time):
        raise ConfigError(f"timerange '{text}': '{value}' is not between 1970 and 2199")
    return time
