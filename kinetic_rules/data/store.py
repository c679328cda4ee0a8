"""The local candle store: one Parquet file per exchange / pair / timeframe, and an index.

    <root>/index.json                      what is held (a cache: rebuilt from the files)
    <root>/<exchange>/<BTC_USDT>-<5m>.parquet

Every change is atomic: the new file is written next to the old one, fsynced and
moved over it with os.replace, then the index likewise; a failed or interrupted
import or download leaves the previous file whole. The Parquet files carry their own
description in their metadata, so a stale or lost index is repaired from them.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kinetic_rules.data.atomic import atomic_write, store_lock
from kinetic_rules.data.candles import (
    COLUMNS,
    bucket_origin_ns,
    canonical_copy,
    check_canonical,
    check_timeframe,
    has_known_grid,
    is_quote_volume_estimated,
    timeframe_ns,
    times_ns,
)
from kinetic_rules.data.pairs import normalize_pair, pair_to_filename
from kinetic_rules.data.resample import resample_with_report
from kinetic_rules.data.series_file import (
    FLAG_COLUMN,
    FORMAT,
    PARQUET_OPTIONS,
    StoredSeries,
    file_metadata,
    frame_from_table,
    merge_candles,
    read_stats,
    series_from_stats,
    series_stats,
    to_table,
)
from kinetic_rules.errors import ConfigError, DataError

__all__ = ["DATA_ENV", "CandleStore", "StoredSeries", "WriteResult", "resolve_data_dir"]

DATA_ENV = "KINETIC_RULES_DATA"
DEFAULT_DATA_DIR = Path("user_data") / "data"
INDEX_FILE = "index.json"
MARKETS = ("spot", "futures")

TimeLike = pd.Timestamp | datetime | str | None


def resolve_data_dir(flag: str | os.PathLike[str] | None = None) -> Path:
    """`--data DIR`, else $KINETIC_RULES_DATA, else ./user_data/data."""
    if flag:
        return Path(flag)
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else DEFAULT_DATA_DIR


@dataclass(frozen=True)
class WriteResult:
    series: StoredSeries
    added: int  # candles the store did not hold before
    replaced: int  # stored candles whose values changed
    written: bool  # False when the store already held exactly this


class CandleStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        # The files of the pair read last, as read: a run reads a pair's timeframes one
        # after another, and each timeframe built from 5m candles reads the 5m file.
        self._recent: tuple[str, dict[_FileKey, pd.DataFrame]] = ("", {})

    def path_for(self, exchange: str, pair: str, timeframe: str) -> Path:
        exchange = check_exchange(exchange)
        name = f"{pair_to_filename(pair)}-{check_timeframe(timeframe)}.parquet"
        return self.root / exchange / name

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        exchange: str,
        pair: str,
        timeframe: str,
        frame: pd.DataFrame,
        *,
        replace: bool = False,
        market: str | None = None,
    ) -> WriteResult:
        """Merge candles into the stored series (new values win), or replace it whole.

        `market` ("spot" or "futures") is recorded with the series; candles of the other
        market are refused, since a perpetual and its spot pair share one name here."""
        pair = normalize_pair(pair)
        path = self.path_for(exchange, pair, timeframe)
        market = self.check_market(exchange, pair, timeframe, market) if not replace else market
        new = canonical_copy(check_canonical(frame, f"candles for {pair} {timeframe}"))
        step = timeframe_ns(timeframe)
        origin = bucket_origin_ns(timeframe)
        if has_known_grid(timeframe) and ((times_ns(new.index) - origin) % step).any():
            raise DataError(f"candles for {pair} {timeframe}: open times off the {timeframe} grid")
        new_flags = np.full(len(new), is_quote_volume_estimated(new))
        with store_lock(self.root):
            old, old_flags = (None, None) if replace else self._read_with_flags(path)
            if old is None and len(new) == 0:
                raise DataError(f"candles for {pair} {timeframe}: nothing to write (no candles)")
            merged, flags, added, replaced = merge_candles(old, old_flags, new, new_flags)
            unchanged = old is not None and added == 0 and replaced == 0
            unchanged = unchanged and old_flags is not None and np.array_equal(flags, old_flags)
            if unchanged:
                return WriteResult(self._describe(path), 0, 0, written=False)
            stats = series_stats(exchange, pair, timeframe, merged, flags, market)
            table = to_table(merged, flags, stats)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda fh: pq.write_table(table, fh, **PARQUET_OPTIONS))
            series = series_from_stats(stats, path)
            index = self._read_index()
            index[_relative(self.root, path)] = _index_entry(stats, path)
            self._write_index(index)
        return WriteResult(series, added, replaced, written=True)

    def check_market(
        self, exchange: str, pair: str, timeframe: str, market: str | None
    ) -> str | None:
        """The market the series will be recorded as; DataError when it holds the other one."""
        if market is not None and market not in MARKETS:
            raise ConfigError(f"'{market}' is not a market; use one of {', '.join(MARKETS)}")
        stored = self.find(exchange, pair, timeframe)
        held = stored.market if stored is not None else None
        if market is None or held is None or held == market:
            return market or held
        raise DataError(
            f"{self.root}: {exchange} {pair} {timeframe} holds {held} candles, and these are "
            f"{market} candles; a perpetual and its spot pair share one name in the store, so "
            f"keep them in separate data directories (--data DIR)"
        )

    # -- reading ---------------------------------------------------------------------------

    def read(
        self,
        exchange: str,
        pair: str,
        timeframe: str,
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> pd.DataFrame:
        """Stored candles with open time in [start, end); DataError when nothing is stored."""
        pair = normalize_pair(pair)
        path = self.path_for(exchange, pair, timeframe)
        if not path.exists():
            raise DataError(self._absent_message(exchange, pair, timeframe))
        frame = self._candles(pair, path)
        if start is None and end is None:
            return frame.copy(deep=False)
        times = times_ns(frame.index)
        lo = 0 if start is None else int(np.searchsorted(times, _timestamp(start).value, "left"))
        hi = (
            len(times)
            if end is None
            else int(np.searchsorted(times, _timestamp(end).value, "left"))
        )
        return frame.iloc[lo:hi]

    def read_index(
        self, exchange: str, pair: str, timeframe: str, end: TimeLike = None
    ) -> pd.DatetimeIndex:
        """Open times of `load(exchange, pair, timeframe, end=end)`, reading only the time
        column when the timeframe is stored as it is (a tenth of the work of the candles)."""
        pair = normalize_pair(pair)
        path = self.path_for(exchange, pair, timeframe)
        if not path.exists():
            return pd.DatetimeIndex(self.load(exchange, pair, timeframe, end=end).index)
        try:
            table = pq.ParquetFile(path).read(columns=["date"], use_threads=False)
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{path}: the stored file cannot be read ({error})") from None
        index = pd.DatetimeIndex(table.column("date").to_numpy(), name="date").tz_localize("UTC")
        if end is None:
            return index
        return index[: int(np.searchsorted(times_ns(index), _timestamp(end).value, "left"))]

    def load(
        self,
        exchange: str,
        pair: str,
        timeframe: str,
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> pd.DataFrame:
        """The stored timeframe, or one built from a finer stored one by closed-candle resampling.

        Among stored finer timeframes that divide the target, the one covering the longest
        span is used (ties: the coarsest, which is cheapest); `attrs["resampled_from"]` names it.
        """
        pair = normalize_pair(pair)
        if self.path_for(exchange, pair, timeframe).exists():
            return self.read(exchange, pair, timeframe, start, end)
        target = timeframe_ns(timeframe)
        sources = [
            s
            for s in self._series_of(exchange, pair)
            if (step := timeframe_ns(s.timeframe)) < target and target % step == 0
        ]
        if not sources:
            raise DataError(self._absent_message(exchange, pair, timeframe))
        best = max(
            sources,
            key=lambda s: (
                s.last - s.first + pd.Timedelta(timeframe_ns(s.timeframe)),
                timeframe_ns(s.timeframe),
            ),
        )
        lo = None if start is None else _floor(_timestamp(start), timeframe)
        fine = self.read(exchange, pair, best.timeframe, lo, end)
        result = resample_with_report(fine, best.timeframe, timeframe)
        frame = result.frame
        if start is not None:
            frame = frame[frame.index >= _timestamp(start)]
        frame.attrs["resampled_from"] = best.timeframe
        frame.attrs["incomplete_buckets_dropped"] = len(result.incomplete)
        return frame

    def find(self, exchange: str, pair: str, timeframe: str) -> StoredSeries | None:
        path = self.path_for(exchange, normalize_pair(pair), timeframe)
        return self._describe(path) if path.exists() else None

    def available(self) -> list[StoredSeries]:
        """Every stored series, sorted by exchange, pair and timeframe length."""
        return self.listing()[0]

    def listing(self) -> tuple[list[StoredSeries], list[str]]:
        """Stored series, and the problems met on the way (unreadable or foreign files)."""
        if not self.root.is_dir():
            return [], []
        index = self._read_index()
        fresh: dict[str, dict[str, Any]] = {}
        series: list[StoredSeries] = []
        problems: list[str] = []
        for path in sorted(self.root.glob("*/*.parquet")):
            try:
                entry = self._entry(index, path)
            except DataError as error:
                problems.append(str(error))
                continue
            fresh[_relative(self.root, path)] = entry
            series.append(series_from_stats(entry, path))
        if fresh != index:
            try:
                with store_lock(self.root):
                    self._write_index(fresh)
            except OSError:
                pass  # a read-only store still lists; the index is only a cache
        series.sort(key=lambda s: (s.exchange, s.pair, timeframe_ns(s.timeframe)))
        return series, problems

    # -- internals -------------------------------------------------------------------------

    def _entry(self, index: dict[str, dict[str, Any]], path: Path) -> dict[str, Any]:
        """The file's index entry, read from the file when the index has none or a stale one."""
        entry = index.get(_relative(self.root, path))
        stat = path.stat()
        if entry and (entry.get("size"), entry.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns):
            return entry
        return _index_entry(read_stats(path), path)

    def _series_of(self, exchange: str, pair: str) -> list[StoredSeries]:
        """The pair's stored series on the exchange, as `available` lists them, from its
        own files only (building a timeframe from a finer one asks for them at every pair)."""
        folder = self.root / check_exchange(exchange)
        if not folder.is_dir():
            return []
        index = self._read_index()
        found = []
        for path in sorted(folder.glob(f"{glob.escape(pair_to_filename(pair))}-*.parquet")):
            try:
                series = series_from_stats(self._entry(index, path), path)
            except DataError:
                continue  # `available` leaves an unreadable file out too
            if series.exchange == exchange and series.pair == pair:
                found.append(series)
        return found

    def _candles(self, pair: str, path: Path) -> pd.DataFrame:
        """The whole stored file, kept with the other files of the pair read last while the
        file is the same (the same inode, size and times: a write replaces the file)."""
        try:
            stat = path.stat()
        except OSError as error:
            raise DataError(f"{path}: the stored file cannot be read ({error})") from None
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        held_pair, held = self._recent
        if held_pair != pair:
            held = {}
            self._recent = (pair, held)
        frame = held.get(key)
        if frame is None:
            try:
                table = pq.ParquetFile(path).read(columns=["date", *COLUMNS], use_threads=False)
                meta = file_metadata(table.schema)
            except (pa.ArrowException, OSError) as error:
                raise DataError(f"{path}: the stored file cannot be read ({error})") from None
            frame = frame_from_table(table, estimated=bool(meta.get("quote_volume_estimated")))
            for stale in [k for k in held if k[0] == key[0]]:
                del held[stale]
            held[key] = frame
        return frame

    def _describe(self, path: Path) -> StoredSeries:
        return series_from_stats(read_stats(path), path)

    def _read_with_flags(
        self, path: Path
    ) -> tuple[pd.DataFrame | None, np.ndarray[Any, Any] | None]:
        if not path.exists():
            return None, None
        try:
            table = pq.ParquetFile(path).read(use_threads=False)
            meta = file_metadata(table.schema)
        except (pa.ArrowException, OSError) as error:
            raise DataError(
                f"{path}: the stored file cannot be read ({error}); move it away to start over"
            ) from None
        frame = frame_from_table(table, estimated=bool(meta.get("quote_volume_estimated")))
        if FLAG_COLUMN in table.column_names:
            flags = np.asarray(
                table.column(FLAG_COLUMN).to_numpy(zero_copy_only=False), dtype=np.bool_
            )
        else:
            flags = np.full(len(frame), is_quote_volume_estimated(frame))
        return frame, flags

    def _absent_message(self, exchange: str, pair: str, timeframe: str) -> str:
        held = [s.timeframe for s in self.available() if s.exchange == exchange and s.pair == pair]
        text = f"no {timeframe} candles for {pair} on {exchange} in {self.root}"
        if held:
            return text + f" (stored: {', '.join(held)})"
        command = f"kinetic-rules download --exchange {exchange} --pairs {pair}"
        return (
            f"{text}; import them with `kinetic-rules data import` or download them with "
            f"`{command} --timeframes {timeframe}`"
        )

    def _read_index(self) -> dict[str, dict[str, Any]]:
        try:
            document = json.loads((self.root / INDEX_FILE).read_text(encoding="utf-8"))
            entries = document["series"]
            return dict(entries) if isinstance(entries, dict) else {}
        except (OSError, ValueError, KeyError, TypeError):
            return {}  # rebuilt from the files by listing()

    def _write_index(self, entries: dict[str, dict[str, Any]]) -> None:
        document = {"format": FORMAT, "series": dict(sorted(entries.items()))}
        text = json.dumps(document, separators=(",", ":")).encode("utf-8")
        atomic_write(self.root / INDEX_FILE, lambda fh: fh.write(text))


_FileKey = tuple[str, int, int, int, int]  # path, inode, size, modified, changed


def _index_entry(stats: dict[str, Any], path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {**stats, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def check_exchange(exchange: str) -> str:
    if not exchange or not exchange.replace("_", "").isalnum() or exchange.lower() != exchange:
        raise ConfigError(f"'{exchange}' is not an exchange id; use ccxt's ids such as binance")
    return exchange


def _timestamp(value: pd.Timestamp | datetime | str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"'{value}' is not a time") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _floor(stamp: pd.Timestamp, timeframe: str) -> pd.Timestamp:
    step, origin = timeframe_ns(timeframe), bucket_origin_ns(timeframe)
    value = (stamp.value - origin) // step * step + origin
    return pd.Timestamp(value, unit="ns", tz="UTC")
