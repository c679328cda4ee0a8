"""Flag parsing shared by several commands; light, so that `--help` imports nothing heavy."""

from __future__ import annotations

from kinetic_rules.errors import ConfigError


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`--set NAME=VALUE` flags → {name: value}; the checker judges the values."""
    overrides: dict[str, str] = {}
    for item in pairs:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set expects NAME=VALUE, got '{item}'")
        overrides[name.strip()] = value.strip()
    return overrides
