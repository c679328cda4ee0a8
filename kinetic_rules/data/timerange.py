"""Times a user types (`--at`, `--from`, `--timerange`), read one unambiguous way.

A time is ISO 8601 (`2024-03-04`, `2024-03-04T10:05`, `2024-03-04 10:05:00+02:00`,
`2024-03-04T10:05Z`), or one of the compact timerange forms `YYYYMMDD`, `YYYYMMDDHHMM`
or 10-digit epoch seconds. A time without an offset is UTC. Anything else — `04/03/2024`,
`March 4`, `yesterday` — is refused rather than guessed: day-first and month-first
readings of the same text differ by months.

`--timerange START-END` takes the compact forms (`20240101-20240201`); the ISO 8601
interval `START/END` takes any of the forms above (`2024-01-01/2024-02-01T12:00`).
Either side may be empty (`20240101-` runs to the latest closed candle). START is
included, END is not: `20240101-20240201` is all of January.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd

from kinetic_rules.errors import ConfigError

_SIDE = re.compile(r"^(\d{8}|\d{12}|\d{10})?$")
_ISO = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?$"
)
TIME_FORMS = "2024-03-04, 2024-03-04T10:05 (ISO 8601, UTC unless it says otherwise) or 20240304"


def parse_time(text: str, what: str = "time") -> pd.Timestamp:
    """One UTC time; ConfigError naming `what` (e.g. `--at`) for anything ambiguous."""
    value = text.strip()
    problem = ConfigError(
        f"{what} '{text}' is not a time I can read unambiguously; write {TIME_FORMS}"
    )
    try:
        if _ISO.match(value):
            parsed = datetime.fromisoformat(value)
            stamp = pd.Timestamp(parsed)
        elif _SIDE.match(value) and value:
            stamp = _compact(value)
        else:
            raise problem
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise problem from None
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    if not supported(stamp):
        raise ConfigError(f"{what} '{text}' is not between 1970 and 2200")
    return stamp


def parse_timerange(text: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """START-END (compact sides) or START/END (ISO 8601 interval): the half-open span."""
    if "/" in text:
        head, _, tail = text.strip().partition("/")
        if not (head.strip() or tail.strip()):
            raise _not_a_timerange(text)
        start = parse_time(head, f"timerange '{text}': start") if head.strip() else None
        end = parse_time(tail, f"timerange '{text}': end") if tail.strip() else None
    else:
        head, sep, tail = text.strip().partition("-")
        if not sep or not _SIDE.match(head) or not _SIDE.match(tail) or not (head or tail):
            raise _not_a_timerange(text)
        start, end = _side(head, text), _side(tail, text)
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"timerange '{text}' ends before it starts")
    return start, end


def _not_a_timerange(text: str) -> ConfigError:
    return ConfigError(
        f"'{text}' is not a timerange; write START-END such as 20240101-20240901 "
        "(UTC dates, either side may be empty: 20240101-), or an ISO 8601 interval "
        "such as 2024-01-01/2024-09-01T12:00"
    )


def _side(value: str, text: str) -> pd.Timestamp | None:
    if not value:
        return None
    try:
        time = _compact(value)
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise ConfigError(f"timerange '{text}': '{value}' is not a date") from None
    if not supported(time):
        raise ConfigError(f"timerange '{text}': '{value}' is not between 1970 and 2200")
    return time


# Candle times are nanoseconds since 1970 (pandas' range ends in 2262); a date outside
# these bounds is a typo, and would overflow deep inside a run.
EARLIEST = pd.Timestamp("1970-01-01", tz="UTC")
LATEST = pd.Timestamp("2201-01-01", tz="UTC")


def supported(time: pd.Timestamp) -> bool:
    """Whether a time given on the command line lies where candles can be."""
    return not pd.isna(time) and EARLIEST <= time < LATEST


def _compact(value: str) -> pd.Timestamp:
    if len(value) == 10:
        return pd.Timestamp(int(value), unit="s", tz="UTC")
    fmt = "%Y%m%d" if len(value) == 8 else "%Y%m%d%H%M"
    return pd.Timestamp(datetime.strptime(value, fmt).replace(tzinfo=UTC))
