"""One stored series as a Parquet file: its columns, its self-description, merging.

Besides the canonical columns a file holds a per-candle `quote_volume_estimated`
flag, so that merging measured and estimated quote volume stays exact, and a JSON
description (pair, timeframe, range, gaps) in the file metadata, from which the
store's index can always be rebuilt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kinetic_rules.data.candles import COLUMNS, mark_quote_volume, timeframe_ns, times_ns
from kinetic_rules.data.validate import count_gaps
from kinetic_rules.errors import DataError

META_KEY = b"kinetic_rules"
FLAG_COLUMN = "quote_volume_estimated"
FORMAT = 1

# lz4 without dictionaries reads about as fast as the feather files users bring (see
# benchmarks/bench_store.py); delta-encoded open times keep the files small.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "lz4",
    "use_dictionary": False,
    "column_encoding": {"date": "DELTA_BINARY_PACKED"},
}


@dataclass(frozen=True)
class StoredSeries:
    exchange: str
    pair: str
    timeframe: str
    first: pd.Timestamp
    last: pd.Timestamp
    count: int
    gaps: int  # holes in the series
    missing: int  # candles missing in those holes
    quote_volume_estimated: bool  # some or all quote volume is volume * close
    path: Path
    market: str | None = None  # "spot" or "futures"; None where the source did not say


def merge_candles(
    old: pd.DataFrame | None,
    old_flags: np.ndarray[Any, Any] | None,
    new: pd.DataFrame,
    new_flags: np.ndarray[Any, Any],
) -> tuple[pd.DataFrame, np.ndarray[Any, Any], int, int]:
    """New candles win, except that an estimated quote volume never replaces a measured one
    of the very same candle (same open, high, low, close and volume)."""
    if old is None or old_flags is None or len(old) == 0:
        return new, new_flags, len(new), 0
    common = old.index.intersection(new.index)
    replaced = 0
    if len(common):
        in_old = old.index.get_indexer(common)
        in_new = new.index.get_indexer(common)
        ohlcv = list(COLUMNS[:-1])
        same_ohlcv = (old[ohlcv].to_numpy()[in_old] == new[ohlcv].to_numpy()[in_new]).all(axis=1)
        keep_measured = same_ohlcv & new_flags[in_new] & ~old_flags[in_old]
        if keep_measured.any():
            new = new.copy()
            quote = new["quote_volume"].to_numpy(copy=True)
            quote[in_new[keep_measured]] = old["quote_volume"].to_numpy()[in_old[keep_measured]]
            new["quote_volume"] = quote
            new_flags = new_flags.copy()
            new_flags[in_new[keep_measured]] = False
        same_quote = (
            old["quote_volume"].to_numpy()[in_old] == new["quote_volume"].to_numpy()[in_new]
        )
        replaced = int((~(same_ohlcv & same_quote)).sum())
    both = pd.concat([old, new])
    flags = np.concatenate([old_flags, new_flags])
    keep = ~both.index.duplicated(keep="last")
    order = np.argsort(times_ns(both.index[keep]), kind="stable")
    merged = both[keep].iloc[order]
    return merged, flags[keep][order], len(merged) - len(old), replaced


def series_stats(
    exchange: str,
    pair: str,
    timeframe: str,
    frame: pd.DataFrame,
    flags: np.ndarray[Any, Any],
    market: str | None = None,
) -> dict[str, Any]:
    times = times_ns(frame.index)
    gaps, missing = count_gaps(times, timeframe_ns(timeframe))
    stats: dict[str, Any] = {
        "exchange": exchange,
        "pair": pair,
        "timeframe": timeframe,
        "first": int(times[0]) if len(times) else None,
        "last": int(times[-1]) if len(times) else None,
        "count": len(times),
        "gaps": gaps,
        "missing": missing,
        "quote_volume_estimated": bool(flags.any()),
        "format": FORMAT,
    }
    if market is not None:
        stats["market"] = market
    return stats


def to_table(frame: pd.DataFrame, flags: np.ndarray[Any, Any], stats: dict[str, Any]) -> pa.Table:
    columns: dict[str, pa.Array[Any]] = {
        "date": pa.array(times_ns(frame.index), pa.timestamp("ns", "UTC")),
    }
    for name in COLUMNS:
        columns[name] = pa.array(frame[name].to_numpy(dtype=np.float64), pa.float64())
    columns[FLAG_COLUMN] = pa.array(flags, pa.bool_())
    return pa.table(columns, metadata={META_KEY: json.dumps(stats).encode("utf-8")})


def frame_from_table(table: pa.Table, *, estimated: bool) -> pd.DataFrame:
    """The candles as numpy-owned columns: a run keeps a few of them (prices) long after the
    rest of the file is gone, and a view would pin the whole decoded table in Arrow's pool."""
    index = pd.DatetimeIndex(table.column("date").to_numpy(), name="date").tz_localize("UTC")
    data = {name: np.array(table.column(name).to_numpy(), np.float64) for name in COLUMNS}
    return mark_quote_volume(pd.DataFrame(data, index=index, copy=False), estimated=estimated)


def file_metadata(schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise DataError("not a kinetic-rules candle file (no kinetic_rules metadata)")
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise DataError("not a kinetic-rules candle file (bad metadata)")
    return value


def read_stats(path: Path) -> dict[str, Any]:
    try:
        return file_metadata(pq.read_schema(path))
    except (pa.ArrowException, OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable candle file ({error})") from None
    except DataError as error:
        raise DataError(f"{path}: {error}") from None


def series_from_stats(stats: dict[str, Any], path: Path) -> StoredSeries:
    def stamp(value: int) -> pd.Timestamp:
        return pd.Timestamp(int(value), unit="ns", tz="UTC")

    return StoredSeries(
        exchange=stats["exchange"],
        pair=stats["pair"],
        timeframe=stats["timeframe"],
        first=stamp(stats["first"]),
        last=stamp(stats["last"]),
        count=int(stats["count"]),
        gaps=int(stats["gaps"]),
        missing=int(stats["missing"]),
        quote_volume_estimated=bool(stats["quote_volume_estimated"]),
        path=path,
        market=stats.get("market"),
    )
