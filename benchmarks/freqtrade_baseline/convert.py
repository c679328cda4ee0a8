"""Binance public-data CSV files into freqtrade's feather candle files, and the trade
comparison the benchmark prints. Pure helpers (pandas and the standard library only), so
the tests can check them without freqtrade installed."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

# The exchange's kline layout: open_time, open, high, low, close, volume, close_time, …
KLINE_COLUMNS = ["date", "open", "high", "low", "close", "volume"]
FILE_NAME = re.compile(r"^(?P<base>[A-Z0-9]+)(?P<quote>USDT)-(?P<tf>\d+[mhdw])\.csv\.gz$")


def source_files(folder: Path) -> list[tuple[Path, str, str]]:
    """(file, freqtrade pair file stem, timeframe) for every kline file in `folder`,
    e.g. BTCUSDT-15m.csv.gz → ("BTC_USDT", "15m")."""
    found = []
    for path in sorted(folder.iterdir()):
        match = FILE_NAME.match(path.name)
        if match:
            found.append((path, f"{match['base']}_{match['quote']}", match["tf"]))
    return found


def pairs_of(folder: Path) -> list[str]:
    """The pairs a folder holds, as freqtrade names them (BTC/USDT), sorted."""
    return sorted({stem.replace("_", "/") for _, stem, _ in source_files(folder)})


def read_klines(path: Path) -> pd.DataFrame:
    """One kline file as freqtrade holds candles: date (UTC, the candle's open), OHLCV."""
    frame = pd.read_csv(path, header=None, usecols=range(6), names=KLINE_COLUMNS)
    frame["date"] = pd.to_datetime(frame["date"], unit="ms", utc=True)
    return frame.astype({k: "float64" for k in KLINE_COLUMNS[1:]})


def data_hash(folder: Path) -> str:
    """A short digest of the kline files' names and bytes: converted data is reused only
    for exactly the same source."""
    digest = hashlib.sha256()
    for path, _, _ in source_files(folder):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def convert(folder: Path, target: Path) -> list[Path]:
    """Write each kline file of `folder` as `<BASE>_USDT-<tf>.feather` in `target` (the
    exchange's folder of a freqtrade data dir) and return the files written."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path, stem, timeframe in source_files(folder):
        out = target / f"{stem}-{timeframe}.feather"
        read_klines(path).to_feather(out, compression="lz4")
        written.append(out)
    return written


def matching_trades(
    ours: Iterable[tuple[str, str]], theirs: Iterable[tuple[str, str]], since: str | None = None
) -> tuple[int, int, int]:
    """How many trades the two runs share by (pair, entry time), and how many each has
    that the other lacks, counting trades entered at or after `since`. Times are compared
    as UTC instants, whatever their text."""
    start = pd.Timestamp(since).tz_convert("UTC") if since else None

    def keys(trades: Iterable[tuple[str, str]]) -> set[tuple[str, pd.Timestamp]]:
        found = {(pair, pd.Timestamp(when).tz_convert("UTC")) for pair, when in trades}
        return {k for k in found if start is None or k[1] >= start}

    a, b = keys(ours), keys(theirs)
    return len(a & b), len(a - b), len(b - a)
