"""Helpers for data tests: the committed real slices and makers of files in each layout."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CSV_DIR = FIXTURES / "binance-15m-csv"
FEATHER_DIR = FIXTURES / "binance-5m-2024"


def copy_fixture(name: str, target: Path) -> Path:
    source = CSV_DIR / name if (CSV_DIR / name).exists() else FEATHER_DIR / name
    destination = target / name
    shutil.copyfile(source, destination)
    return destination


def csv_lines(name: str) -> list[str]:
    """The rows of a committed exchange CSV slice, as text lines."""
    with gzip.open(CSV_DIR / name, "rt") as handle:
        return handle.read().splitlines()


def write_csv(path: Path, lines: list[str]) -> Path:
    text = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def snapshot(root: Path) -> dict[str, str]:
    """Every file under a store and a hash of its bytes: equal snapshots, untouched store."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def frame_to_kline_lines(
    frame: pd.DataFrame, timeframe_ms: int, *, micros: bool = False
) -> list[str]:
    """A canonical frame in the exchange's 12-column kline CSV layout."""
    scale = 1_000 if micros else 1
    lines = []
    for stamp, row in zip(
        frame.index.asi8 // 1_000_000, frame.itertuples(index=False), strict=True
    ):
        t = int(stamp)
        lines.append(
            f"{t * scale},{row.open!r},{row.high!r},{row.low!r},{row.close!r},{row.volume!r},"
            f"{(t + timeframe_ms - 1) * scale},{row.quote_volume!r},10,0,0,0"
        )
    return lines


def frame_to_freqtrade_json(frame: pd.DataFrame) -> str:
    rows = [
        [int(t), o, h, lo, c, v]
        for t, o, h, lo, c, v in zip(
            frame.index.asi8 // 1_000_000,
            frame["open"],
            frame["high"],
            frame["low"],
            frame["close"],
            frame["volume"],
            strict=True,
        )
    ]
    return json.dumps(rows)


def frame_to_feather(frame: pd.DataFrame, path: Path) -> Path:
    out = frame[["open", "high", "low", "close", "volume"]].reset_index()
    out.to_feather(path)
    return path


def assert_same_candles(left: pd.DataFrame, right: pd.DataFrame, *, quote: bool = True) -> None:
    columns = ["open", "high", "low", "close", "volume"] + (["quote_volume"] if quote else [])
    assert list(left.index.asi8) == list(right.index.asi8)
    for column in columns:
        np.testing.assert_array_equal(left[column].to_numpy(), right[column].to_numpy(), column)


def random_candles(
    seed: int, n: int, timeframe: str = "5m", *, gaps: bool = False, start: str = "2024-01-01"
) -> pd.DataFrame:
    """Plausible candles (positive prices, high/low around open/close) on the timeframe's grid."""
    from kinetic_rules.data.candles import bucket_origin_ns, candle_frame, timeframe_ns

    rng = np.random.default_rng(seed)
    step, origin = timeframe_ns(timeframe), bucket_origin_ns(timeframe)
    first = (pd.Timestamp(start, tz="UTC").value - origin) // step * step + origin
    increments = rng.integers(1, 4, n) if gaps else np.ones(n, dtype=np.int64)
    increments[1:2] = 1  # real markets have adjacent candles somewhere
    times = first + (np.cumsum(increments) - increments[0]) * step if n else np.empty(0, np.int64)
    open_ = np.round(rng.uniform(0.5, 2.0, n) * 10.0 ** rng.integers(-3, 5, n), 6)
    close = np.round(open_ * rng.uniform(0.95, 1.05, n), 6)
    high = np.round(np.maximum(open_, close) * rng.uniform(1.0, 1.02, n), 6)
    low = np.round(np.minimum(open_, close) * rng.uniform(0.98, 1.0, n), 6)
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))
    volume = np.round(rng.uniform(0, 1000, n), 5)
    quote = np.round(volume * close * rng.uniform(0.99, 1.01, n), 4)
    return candle_frame(np.asarray(times, dtype=np.int64), open_, high, low, close, volume, quote)
