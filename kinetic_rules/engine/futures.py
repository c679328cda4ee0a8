"""What a market adds to its candles: funding, mark prices and the exchange's rules.

All three are optional. They reach the trade paths as extra per-candle arrays in a
pair's `prices` (so a live runtime's view of the first n candles cuts them like the
candles, and a replay sees exactly what the backtest saw):

- `funding`: the rate of each funding time, on the candle whose span holds it (summed
  when one candle holds several), NaN on the other candles;
- `mark_open`, `mark_high`, `mark_low`: the mark-price candle, the traded candle's own
  values where no mark candle is stored.

Funding is settled at the funding time: a position held then pays rate × amount × price
(the mark price at that time, else the traded price), a long paying a positive rate and
a short receiving it. Fills at the open of the candle holding a funding time come just
after it: an entry there pays nothing then, an exit there still pays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kinetic_rules.engine.model import Trade
from kinetic_rules.market_rules import MarketRules
from kinetic_rules.timeframes import timeframe_seconds

FundingFeed = Callable[[str], pd.DataFrame | None]  # pair -> funding times (rate column)
MarkFeed = Callable[[str, str], pd.DataFrame | None]  # pair, timeframe -> mark candles
Feed = Callable[[str, str], pd.DataFrame]  # pair, timeframe -> candles
FUNDING_RATE = "funding_rate"  # the rules' name for the latest known rate


def _none_funding(pair: str) -> pd.DataFrame | None:
    return None


def _none_mark(pair: str, timeframe: str) -> pd.DataFrame | None:
    return None


@dataclass(frozen=True)
class MarketExtras:
    """Where funding, mark prices and market rules come from (nothing, by default)."""

    funding: FundingFeed = _none_funding
    mark: MarkFeed = _none_mark
    rules: Mapping[str, MarketRules] | None = None  # None: no markets file at all
    exchange: str = ""

    def rules_for(self, pair: str) -> MarketRules | None:
        return None if self.rules is None else self.rules.get(pair)


def extra_prices(
    index: pd.DatetimeIndex,
    step: pd.Timedelta,
    prices: dict[str, np.ndarray],
    funding: pd.DataFrame | None,
    mark: pd.DataFrame | None,
) -> dict[str, np.ndarray]:
    """The funding and mark arrays of one pair, on its candles (see the module docstring)."""
    extra: dict[str, np.ndarray] = {}
    if funding is not None and len(funding) and len(index):
        times = pd.DatetimeIndex(funding.index)
        candle = index.searchsorted(times, side="right") - 1
        inside = candle >= 0
        inside[inside] &= times[inside] < index[candle[inside]] + step
        rates = np.zeros(len(index))
        np.add.at(rates, candle[inside], funding["rate"].to_numpy(np.float64)[inside])
        held = np.zeros(len(index), dtype=bool)
        held[candle[inside]] = True
        extra["funding"] = np.where(held, rates, np.nan)
    if mark is not None and len(mark):
        aligned = mark.reindex(index)
        for name in ("open", "high", "low"):
            values = aligned[name].to_numpy(np.float64)
            extra[f"mark_{name}"] = np.where(np.isfinite(values), values, prices[name])
    return extra


def latest_funding_rate(
    index: pd.DatetimeIndex, step: pd.Timedelta, funding: pd.DataFrame | None
) -> np.ndarray:
    """At each candle's close, the rate of the latest funding time at or before it (point
    in time: a rate settled after the close is not known there); NaN before the first."""
    rates = np.full(len(index), np.nan)
    if funding is None or not len(funding) or not len(index):
        return rates
    times = pd.DatetimeIndex(funding.index)
    latest = times.searchsorted(index + step, side="right") - 1
    known = latest >= 0
    rates[known] = funding["rate"].to_numpy(np.float64)[latest[known]]
    return rates


def with_funding_rate(feed: Feed, base: str, funding: FundingFeed) -> Feed:
    """`feed` whose base candles carry the `funding_rate` the rules read, from `funding`."""
    cache: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}  # pair -> (candles, with rate)
    step = pd.Timedelta(seconds=timeframe_seconds(base))

    def read(pair: str, timeframe: str) -> pd.DataFrame:
        candles = feed(pair, timeframe)
        if timeframe != base or FUNDING_RATE in candles.columns:
            return candles
        known = cache.get(pair)
        if known is None or known[0] is not candles:
            rates = latest_funding_rate(pd.DatetimeIndex(candles.index), step, funding(pair))
            known = cache[pair] = (candles, candles.assign(**{FUNDING_RATE: rates}))
        return known[1]

    return read


def funding_payments(
    trade: Trade, index: pd.DatetimeIndex, prices: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Candles (positions in `index`) where the trade paid or received funding, and what it
    paid there (positive: paid, negative: received), as far as the candles reach."""
    rates = prices.get("funding")
    if rates is None or not len(index):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    entry = int(index.searchsorted(trade.entry_time))
    last = len(index) - 1 if trade.exit_time is None else int(index.searchsorted(trade.exit_time))
    last = min(last, len(index) - 1)
    candles = np.arange(entry + 1, last + 1)
    candles = candles[np.isfinite(rates[candles])]
    if not len(candles):
        return candles, np.zeros(0)
    held = np.full(len(candles), trade.amount)
    for fill in trade.fills[1:]:
        held[candles > index.searchsorted(fill.time)] -= fill.amount
    price = prices.get("mark_open", prices["open"])[candles]
    sign = 1.0 if trade.side == "long" else -1.0
    paid = sign * rates[candles] * np.maximum(held, 0.0) * price
    return candles, paid


def describe_extras(
    futures: bool,
    stops_on_mark: bool,
    pairs: list[str],
    with_funding: list[str],
    with_mark: list[str],
    extras: MarketExtras,
    skipped_entries: int,
    skipped_exits: int,
) -> tuple[str, ...]:
    """The report's sentences on funding, mark prices and exchange rules."""
    lines: list[str] = []
    if futures:
        missing = [p for p in pairs if p not in with_funding]
        if with_funding:
            lines.append(
                "Funding is charged at each stored funding time on the position's value at "
                "the mark price (the traded price where no mark price is stored): longs pay "
                "positive rates, shorts receive them. It counts in each trade's profit and "
                f"in equity when paid. Funding data: {', '.join(with_funding)}."
            )
        if missing:
            lines.append(
                f"No funding data for {', '.join(missing)}: funding was NOT charged on "
                "these pairs (assumed zero); import the exchange's fundingRate files "
                "(docs/data.md)."
            )
        marked = [p for p in pairs if p in with_mark]
        unmarked = [p for p in pairs if p not in with_mark]
        trigger = "mark price" if stops_on_mark else "last traded price"
        if marked:
            lines.append(
                f"Mark-price candles used for liquidations and stops ({trigger} trigger "
                f"`orders.stop_trigger`) on {', '.join(marked)}."
            )
        if unmarked:
            lines.append(
                f"No mark-price candles for {', '.join(unmarked)}: liquidations and stops "
                "there use the traded price."
            )
    if extras.rules is None:
        lines.append(
            f"No exchange rules were applied: the store holds no markets file for "
            f"{extras.exchange or 'this exchange'} (amounts and stops are not rounded, "
            "no minimum order value)."
        )
        return tuple(lines)
    ruled = [(p, r) for p in pairs if (r := extras.rules_for(p)) is not None]
    if ruled:
        each = "; ".join(f"{p}: {r.describe()}" for p, r in ruled)
        lines.append(
            f"Exchange rules from the store's markets file ({each}) are applied to every "
            "order: amounts are truncated to the amount step, stops are "
            "rounded to the tick towards the price (never looser), and orders worth less "
            f"than the minimum are not sent (skipped: {skipped_entries} entries, "
            f"{skipped_exits} take-profits; a skipped take-profit's share closes with the "
            "trade's next exit)."
        )
    unruled = [p for p in pairs if extras.rules_for(p) is None]
    if unruled:
        lines.append(
            f"No exchange rules for {', '.join(unruled)} in the markets file: their "
            "amounts and stops are not rounded."
        )
    return tuple(lines)
