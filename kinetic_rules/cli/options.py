"""Flag parsing shared by several commands; light, so that `--help` imports nothing heavy."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from kinetic_rules.errors import ConfigError
from kinetic_rules.timeframes import parse_duration

if TYPE_CHECKING:
    from kinetic_rules.backtest.runner import BacktestRequest

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


def add_gaps_flag(parser: argparse.ArgumentParser) -> None:
    """`--gaps keep|fill`, the same in every command that runs a strategy on candles."""
    parser.add_argument(
        "--gaps",
        choices=("keep", "fill"),
        help="missing candles: keep the holes, or fill each at the previous close with zero "
        "volume as freqtrade does (default: the file's backtest.gaps, else keep)",
    )


def candle_request(args: argparse.Namespace, **decided: Any) -> BacktestRequest:
    """The run the shared flags describe (the strategy, --data, --pairs, --timerange, --set,
    --exchange, --gaps, --warmup), so every command reads them alike; `decided` holds the
    fields a command sets itself, such as a replay's data folder and mode."""
    from kinetic_rules.backtest.runner import BacktestRequest
    from kinetic_rules.data.store import resolve_data_dir
    from kinetic_rules.data.timerange import parse_timerange

    start, end = parse_timerange(args.timerange) if args.timerange else (None, None)
    fields: dict[str, Any] = {
        "strategy": args.strategy,
        "pairs": args.pairs,
        "start": start,
        "end": end,
        "overrides": parse_overrides(getattr(args, "set", None) or []),
        "exchange": args.exchange,
        "gaps": args.gaps,
        "warmup": parse_warmup(args.warmup),
        **decided,
    }
    if "data_dir" not in fields:
        fields["data_dir"] = resolve_data_dir(args.data)
    return BacktestRequest(**fields)
