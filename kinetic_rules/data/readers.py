"""Readers for the layouts users hold: the exchange's kline CSV (plain, gzip, zip) and
freqtrade's feather and JSON files. Each returns RawCandles for `validate`.

Clean files take a fast path through pyarrow; a file the fast path cannot parse is
read again line by line so that every bad row can be named. A file that cannot be
read at all (truncated archive, not a feather file) raises DataError naming it.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather

from kinetic_rules.data.candles import FloatArray, IntArray
from kinetic_rules.data.validate import MAX_EXAMPLES, RawCandles
from kinetic_rules.errors import DataError
from kinetic_rules.files import open_regular, read_regular

KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_USED = ("open_time", "open", "high", "low", "close", "volume", "quote_volume")
_FREQTRADE_COLUMNS = ("date", "open", "high", "low", "close", "volume")

# Epoch milliseconds cover 1973..5138; the exchange's spot bulk files use microseconds
# from 2025 on. Each value is judged on its own, so a file that mixes both still reads.
_MS_MIN, _US_MIN, _US_END = 10**11, 10**14, 10**17


@dataclass(frozen=True)
class CandleSource:
    """One readable unit: a file, or one CSV inside a zip archive."""

    label: str  # how reports name it
    name: str  # the file name that pair and timeframe are read from
    read: Callable[[], RawCandles]


def sources_in(path: Path) -> list[CandleSource]:
    """The candle sources a path holds; a zip archive holds one per CSV member."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return _zip_sources(path)
    if name.endswith((".csv", ".csv.gz")):
        return [CandleSource(path.name, path.name, lambda: read_kline_csv(_file_bytes(path)))]
    if name.endswith(".feather"):
        return [CandleSource(path.name, path.name, lambda: read_feather(path))]
    if name.endswith((".json", ".json.gz", ".jsongz")):
        return [CandleSource(path.name, path.name, lambda: read_freqtrade_json(_file_bytes(path)))]
    raise DataError(f"not a candle file kinetic-rules reads ({', '.join(SUFFIXES)})")


SUFFIXES = (".csv", ".csv.gz", ".zip", ".feather", ".json", ".json.gz", ".jsongz")


def is_candle_file(path: Path) -> bool:
    return path.name.lower().endswith(SUFFIXES)


def _file_bytes(path: Path) -> bytes:
    try:
        data = read_regular(path)  # a FIFO or a device is refused, never read
    except OSError as error:
        raise DataError(f"cannot read the file: {error.strerror or error}") from None
    if path.name.lower().endswith((".gz", ".jsongz")):
        return _gunzip(data)
    return data


def _gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except EOFError:
        raise DataError("the file is truncated: its gzip data ends before the end marker") from None
    except (OSError, zlib.error) as error:
        raise DataError(f"not readable gzip data ({error})") from None


def _zip_sources(path: Path) -> list[CandleSource]:
    try:
        with open_regular(path) as handle, zipfile.ZipFile(handle) as archive:
            members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"not a readable zip archive ({error})") from None
    if not members:
        raise DataError("the zip archive holds no .csv file")

    def reader(member: str) -> Callable[[], RawCandles]:
        def read() -> RawCandles:
            try:
                with open_regular(path) as handle, zipfile.ZipFile(handle) as archive:
                    data = archive.read(member)
            except (zipfile.BadZipFile, OSError, zlib.error, EOFError) as error:
                raise DataError(f"cannot be extracted from the archive ({error})") from None
            return read_kline_csv(data)

        return read

    return [CandleSource(f"{path.name}:{m}", Path(m).name, reader(m)) for m in members]


def read_kline_csv(data: bytes) -> RawCandles:
    """The 12-column kline CSV, with or without the header row futures files carry."""
    data = data.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark, left by some editors
    skip = 1 if data[:1].isalpha() else 0
    if b"\n\n" in data or b"\n\r\n" in data:  # blank lines would shift the fast path's line numbers
        return _read_csv_slowly(data, skip)
    types: dict[str, pa.DataType] = {name: pa.float64() for name in _USED}
    types["open_time"] = pa.int64()
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=list(KLINE_COLUMNS), skip_rows=skip),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(_USED)),
        )
    except pa.ArrowInvalid:
        return _read_csv_slowly(data, skip)
    if any(table.column(name).null_count for name in _USED):
        return _read_csv_slowly(data, skip)
    rows = np.arange(1 + skip, table.num_rows + 1 + skip, dtype=np.int64)
    epoch = table.column("open_time").to_numpy()
    values = [table.column(name).to_numpy() for name in _USED[1:]]
    return _from_columns(epoch, values, rows, "line")


def _read_csv_slowly(data: bytes, skip: int) -> RawCandles:
    epochs: list[int] = []
    values: list[list[float]] = []
    rows: list[int] = []
    bad: list[str] = []
    bad_count = 0
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if number <= skip or not line.strip():
            continue
        fields = line.split(",")
        try:
            if len(fields) != len(KLINE_COLUMNS):
                raise ValueError(f"expected 12 comma-separated fields, found {len(fields)}")
            epoch = _parse_int(fields[0], "open_time")
            parsed = [_parse_float(fields[i], KLINE_COLUMNS[i]) for i in (1, 2, 3, 4, 5, 7)]
        except ValueError as error:
            bad_count += 1
            if len(bad) < MAX_EXAMPLES:
                bad.append(f"line {number:,}: {error}: '{_clip(line)}'")
            continue
        epochs.append(epoch)
        values.append(parsed)
        rows.append(number)
    matrix = np.array(values, dtype=np.float64).reshape(-1, 6)
    raw = _from_columns(
        np.array(epochs, dtype=np.int64),
        [matrix[:, i] for i in range(6)],
        np.array(rows, dtype=np.int64),
        "line",
    )
    raw.unparseable_count += bad_count
    raw.unparseable_examples[:0] = bad
    return raw


def read_feather(path: Path) -> RawCandles:
    """freqtrade's feather: `date` (UTC timestamp, open time) and OHLCV, no quote volume."""
    try:
        with open_regular(path) as handle:
            table = feather.read_table(handle, memory_map=False)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"not a readable feather file ({error})") from None
    missing = [c for c in _FREQTRADE_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(
            f"feather columns missing: {', '.join(missing)} "
            f"(found: {', '.join(table.column_names)})"
        )
    date = table.column("date")
    if pa.types.is_timestamp(date.type):
        times = date.cast(pa.timestamp("ns", date.type.tz)).cast(pa.int64())
    elif pa.types.is_integer(date.type):
        times = pc.multiply(date.cast(pa.int64()), 1_000_000)  # freqtrade's older ms epochs
    else:
        raise DataError(f"column 'date' holds {date.type}, not timestamps")
    names = ["open", "high", "low", "close", "volume"]
    has_quote = "quote_volume" in table.column_names
    values = [_floats(table.column(name), name) for name in names]
    values.append(
        _floats(table.column("quote_volume"), "quote_volume") if has_quote else values[-1]
    )
    known = np.asarray(times.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
    rows = np.arange(1, table.num_rows + 1, dtype=np.int64)
    examples = [f"row {int(r):,}: no open time" for r in rows[~known][:MAX_EXAMPLES]]
    raw = _assemble(
        times.fill_null(pa.scalar(0, pa.int64())).to_numpy(), known, values, rows, "row", examples
    )
    if not has_quote:
        raw.quote_volume = None
    return raw


def read_freqtrade_json(data: bytes) -> RawCandles:
    """freqtrade's JSON: `[[open time ms, open, high, low, close, volume], ...]`."""
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"not valid JSON ({error})") from None
    if not isinstance(document, list):
        raise DataError("expected a JSON list of [time, open, high, low, close, volume] rows")
    try:
        matrix = np.array(document, dtype=np.float64)
        clean = (matrix.ndim == 2 and matrix.shape[1] >= 6) or len(document) == 0
    except (TypeError, ValueError):
        clean = False
    if not clean:
        return _read_json_slowly(document)
    matrix = matrix.reshape(-1, matrix.shape[1] if matrix.ndim == 2 else 6)
    rows = np.arange(1, len(matrix) + 1, dtype=np.int64)
    epochs = matrix[:, 0]
    if not np.all(np.isfinite(epochs)):
        return _read_json_slowly(document)
    values = [matrix[:, i] for i in range(1, 6)]
    raw = _from_columns(
        epochs.astype(np.int64), [*values, np.full(len(matrix), np.nan)], rows, "row"
    )
    raw.quote_volume = None
    return raw


def _read_json_slowly(document: list[Any]) -> RawCandles:
    epochs: list[int] = []
    values: list[list[float]] = []
    rows: list[int] = []
    bad: list[str] = []
    bad_count = 0
    for number, item in enumerate(document, 1):
        ok = isinstance(item, list) and len(item) >= 6
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in item[:6])
        if not ok:
            bad_count += 1
            if len(bad) < MAX_EXAMPLES:
                bad.append(
                    f"row {number:,}: expected [time, open, high, low, close, volume], "
                    f"found {_clip(json.dumps(item))}"
                )
            continue
        epochs.append(int(item[0]))
        values.append([float(v) for v in item[1:6]])
        rows.append(number)
    matrix = np.array(values, dtype=np.float64).reshape(-1, 5)
    columns = [matrix[:, i] for i in range(5)]
    raw = _from_columns(
        np.array(epochs, dtype=np.int64),
        [*columns, np.full(len(rows), np.nan)],
        np.array(rows, dtype=np.int64),
        "row",
    )
    raw.quote_volume = None
    raw.unparseable_count += bad_count
    raw.unparseable_examples[:0] = bad
    return raw


def _from_columns(
    epochs: IntArray, values: list[FloatArray], rows: IntArray, label: str
) -> RawCandles:
    """Convert open times to ns, setting aside rows whose time is in no unit we know."""
    epochs = np.asarray(epochs, dtype=np.int64)
    is_ms = (epochs >= _MS_MIN) & (epochs < _US_MIN)
    is_us = (epochs >= _US_MIN) & (epochs < _US_END)
    times = np.where(is_us, epochs * 1_000, epochs * 1_000_000)
    known = is_ms | is_us
    examples: list[str] = []
    if not known.all():
        for i in np.flatnonzero(~known)[:MAX_EXAMPLES]:
            examples.append(
                f"{label} {int(rows[i]):,}: open time {int(epochs[i])} is neither "
                "epoch milliseconds nor microseconds"
            )
    return _assemble(times, known, values, rows, label, examples)


def _assemble(
    times: IntArray,
    known: npt.NDArray[np.bool_],
    values: list[FloatArray],
    rows: IntArray,
    label: str,
    examples: list[str],
) -> RawCandles:
    cols = [np.asarray(v, dtype=np.float64)[known] for v in values]
    return RawCandles(
        np.asarray(times, dtype=np.int64)[known],
        cols[0],
        cols[1],
        cols[2],
        cols[3],
        cols[4],
        cols[5],
        rows[known],
        label,
        unparseable_count=int((~known).sum()),
        unparseable_examples=examples,
    )


def _floats(column: pa.ChunkedArray[Any], label: str) -> FloatArray:
    try:
        return np.asarray(column.cast(pa.float64()).to_numpy(), dtype=np.float64)
    except (pa.ArrowException, ValueError) as error:
        raise DataError(f"column {label} holds non-numeric values ({error})") from None


def _parse_int(text: str, column: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{column} is not a whole number") from None


def _parse_float(text: str, column: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"{column} is not a number") from None


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
