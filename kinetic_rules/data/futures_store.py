"""What a futures backtest needs besides candles, stored beside them in the same root:

    <root>/funding/<exchange>/<BTC_USDT>.parquet        the funding rate at each funding time
    <root>/mark/<exchange>/<BTC_USDT>-<15m>.parquet     mark-price candles (a candle store)
    <root>/markets/<exchange>.json                      tick, amount step, minimums per pair

Each lives in its own subtree so the candle store's listing never sees it. Writers are
atomic (a sibling file moved over the old one) and merge: new values win where two
overlap. `data import` fills them from the exchange's public files; `download` fills
them through ccxt with the same calls (`write_funding`, `mark.write`, `write_markets`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kinetic_rules.data.atomic import atomic_write, store_lock
from kinetic_rules.data.candles import times_ns
from kinetic_rules.data.pairs import normalize_pair, pair_from_filename, pair_to_filename
from kinetic_rules.data.store import CandleStore, check_exchange
from kinetic_rules.errors import DataError
from kinetic_rules.market_rules import MarketRules

FUNDING_COLUMNS = ("rate", "interval_hours")
MAX_FUNDING_RATE = 0.1  # 10% per funding time: far beyond any exchange's cap, so a typo
_META = b"kinetic_rules_funding"


@dataclass(frozen=True)
class FundingWrite:
    pair: str
    added: int  # funding times the store did not hold before
    stored: int  # funding times held now
    first: pd.Timestamp
    last: pd.Timestamp


def funding_frame(times_ms: np.ndarray, rates: np.ndarray, hours: np.ndarray) -> pd.DataFrame:
    """Funding times (epoch ms) and rates as the store holds them: sorted, one row a time,
    a later row winning over an earlier one of the same time."""
    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(times_ms, np.int64), unit="ms", utc=True))
    frame = pd.DataFrame(
        {"rate": np.asarray(rates, np.float64), "interval_hours": np.asarray(hours, np.float64)},
        index=index.rename("date"),
    )
    frame = frame[~frame.index.duplicated(keep="last")]
    return frame.sort_index(kind="stable")


def check_funding(frame: pd.DataFrame, what: str) -> None:
    rates = frame["rate"].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(rates) | (np.abs(rates) > MAX_FUNDING_RATE)
    if bad.any():
        at = frame.index[int(np.argmax(bad))]
        raise DataError(
            f"{what}: funding rate {rates[bad][0]!r} at {at:%Y-%m-%d %H:%M} is not a rate "
            f"between -{MAX_FUNDING_RATE:g} and {MAX_FUNDING_RATE:g} (per funding time)"
        )


class FuturesStore:
    """Funding rates, mark-price candles and market rules of one store root."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.mark = CandleStore(self.root / "mark")

    # -- funding -------------------------------------------------------------------------
    def funding_path(self, exchange: str, pair: str) -> Path:
        name = f"{pair_to_filename(normalize_pair(pair))}.parquet"
        return self.root / "funding" / check_exchange(exchange) / name

    def write_funding(self, exchange: str, pair: str, frame: pd.DataFrame) -> FundingWrite:
        """Merge funding times (index: UTC time; columns rate and interval_hours) into the
        stored series; new values win."""
        pair = normalize_pair(pair)
        check_funding(frame, f"funding rates for {pair}")
        path = self.funding_path(exchange, pair)
        with store_lock(self.root):
            old = self.read_funding(exchange, pair)
            both = frame[list(FUNDING_COLUMNS)] if old is None else pd.concat([old, frame])
            merged = both[~both.index.duplicated(keep="last")].sort_index(kind="stable")
            if not len(merged):
                raise DataError(f"funding rates for {pair}: nothing to write (no rows)")
            added = len(merged) - (0 if old is None else len(old))
            meta = {"exchange": exchange, "pair": pair, "kind": "funding", "count": len(merged)}
            table = pa.table(
                {
                    "date": pa.array(times_ns(merged.index), pa.timestamp("ns", "UTC")),
                    "rate": pa.array(merged["rate"].to_numpy(np.float64)),
                    "interval_hours": pa.array(merged["interval_hours"].to_numpy(np.float64)),
                },
                metadata={_META: json.dumps(meta).encode()},
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda fh: pq.write_table(table, fh))
        return FundingWrite(pair, added, len(merged), merged.index[0], merged.index[-1])

    def read_funding(self, exchange: str, pair: str) -> pd.DataFrame | None:
        """The stored funding times of a pair (None when none are stored)."""
        path = self.funding_path(exchange, pair)
        if not path.exists():
            return None
        try:
            table = pq.read_table(path, use_threads=False)
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{path}: the stored funding file cannot be read ({error})") from None
        index = pd.DatetimeIndex(table.column("date").to_numpy(), name="date").tz_localize("UTC")
        return pd.DataFrame(
            {name: table.column(name).to_numpy() for name in FUNDING_COLUMNS}, index=index
        )

    def funding_pairs(self, exchange: str) -> list[str]:
        folder = self.root / "funding" / check_exchange(exchange)
        return sorted(filter(None, (pair_from_filename(p.stem) for p in folder.glob("*.parquet"))))

    # -- mark prices ---------------------------------------------------------------------
    def load_mark(
        self, exchange: str, pair: str, timeframe: str, end: pd.Timestamp | None = None
    ) -> pd.DataFrame | None:
        """Mark-price candles of `timeframe` (resampled from finer ones if need be), or None."""
        try:
            return self.mark.load(exchange, pair, timeframe, end=end)
        except DataError:
            return None

    # -- market rules --------------------------------------------------------------------
    def markets_path(self, exchange: str) -> Path:
        return self.root / "markets" / f"{check_exchange(exchange)}.json"

    def write_markets(self, exchange: str, rules: dict[str, MarketRules]) -> int:
        """Merge market rules into the exchange's file (new pairs' rules win); returns the
        number of pairs held now."""
        path = self.markets_path(exchange)
        with store_lock(self.root):
            held = self.read_markets(exchange) or {}
            held.update({normalize_pair(p): r for p, r in rules.items()})
            document = {
                "exchange": exchange,
                "markets": {pair: asdict(held[pair]) for pair in sorted(held)},
            }
            text = (json.dumps(document, indent=1) + "\n").encode()
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda fh: fh.write(text))
        return len(held)

    def read_markets(self, exchange: str) -> dict[str, MarketRules] | None:
        """The stored market rules of an exchange; None when it has no markets file."""
        path = self.markets_path(exchange)
        if not path.exists():
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return parse_markets(document)
        except (OSError, ValueError) as error:
            raise DataError(f"{path}: the stored markets file cannot be read ({error})") from None


def parse_markets(document: Any) -> dict[str, MarketRules]:
    """Our markets file: {"markets": {"BTC/USDT": {"tick_size": 0.01, ...}}}."""
    markets = document.get("markets") if isinstance(document, dict) else None
    if not isinstance(markets, dict):
        raise ValueError('expected {"markets": {PAIR: {tick_size, amount_step, ...}}}')
    fields = set(MarketRules.__dataclass_fields__)
    parsed: dict[str, MarketRules] = {}
    for pair, values in markets.items():
        if not isinstance(values, dict) or not set(values) <= fields:
            raise ValueError(f"{pair}: expected the keys {', '.join(sorted(fields))}")
        numbers = {k: float(v) for k, v in values.items()}
        if any(not np.isfinite(v) or v < 0 for v in numbers.values()):
            raise ValueError(f"{pair}: rules must be numbers of 0 or more")
        parsed[normalize_pair(str(pair))] = MarketRules(**numbers)
    return parsed
