"""Flag parsing shared by several commands; light, so that `--help` imports nothing heavy."""

from __future__ import annotations

from kinetic_rules.errors import ConfigError
from kinetic_rules.timeframes import parse_duration

WARMUP_HELP = (
    "accept a shorter warm-up than the indicators need, e.g. 30d (overrides backtest.warmup); "
    "the report says how converged the slowest indicator is then"
)


def parse_warmup(text: str | None) -> int | None:
    """`--warmup 30d` → seconds; None when not given."""
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as bad:
        raise ConfigError(f"--warmup {text}: {bad}") from None
    return seconds


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`--set NAME=VALUE` flags → {name: value}; the checker judges the values."""
    overrides: dict[str, str] = {}
    for item in pairs:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set expects NAME=VALUE, got '{item}'")
        overrides[name.strip()] = value.strip()
    return overrides
