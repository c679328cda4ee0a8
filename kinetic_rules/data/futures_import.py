"""`data import` for futures data: the exchange's funding-rate and mark-price files, and
`data import-markets` for market rules.

- Funding: Binance public data `BTCUSDT-fundingRate-2024-01.zip` (or .csv, .csv.gz), a CSV
  with the header `calc_time,funding_interval_hours,last_funding_rate`.
- Mark prices: `markPriceKlines` files have the kline layout and the klines' file names, so
  they are told apart by the folder they sit in (`.../markPriceKlines/...`) or `--mark`.
- Market rules: our own markets JSON, or the exchange's `exchangeInfo` answer saved to a
  file (its PRICE_FILTER, LOT_SIZE and NOTIONAL / MIN_NOTIONAL filters).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from kinetic_rules.data.futures_store import (
    FundingWrite,
    FuturesStore,
    check_funding,
    funding_frame,
    parse_markets,
)
from kinetic_rules.data.pairs import normalize_pair, split_symbol
from kinetic_rules.data.readers import _file_bytes
from kinetic_rules.errors import ConfigError, DataError
from kinetic_rules.market_rules import MarketRules

_FUNDING = re.compile(
    r"^(?P<symbol>[A-Za-z0-9]+)-fundingRate(?:-\d{4}-\d{2}(?:-\d{2})?)?\.(?:csv|csv\.gz|zip)$"
)
FUNDING_HEADER = ("calc_time", "funding_interval_hours", "last_funding_rate")
MARK_FOLDER = "markPriceKlines"


def is_funding_file(path: Path) -> bool:
    return _FUNDING.match(path.name) is not None


def is_mark_file(path: Path) -> bool:
    return MARK_FOLDER in path.parts


@dataclass
class FundingOutcome:
    label: str
    pair: str
    rows: int = 0
    error: str | None = None


def read_funding_csv(data: bytes, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calc times in epoch ms, interval hours, rates) of a funding CSV."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    if tuple(c.strip() for c in first.split(",")) != FUNDING_HEADER:
        raise DataError(
            f"{label}: not a funding-rate file: its header is '{first[:80]}', expected "
            f"'{','.join(FUNDING_HEADER)}'"
        )
    types = {"calc_time": pa.int64(), "funding_interval_hours": pa.float64()}
    types["last_funding_rate"] = pa.float64()
    try:
        table = pacsv.read_csv(
            io.BytesIO(data), convert_options=pacsv.ConvertOptions(column_types=types)
        )
    except pa.ArrowInvalid as error:
        raise DataError(f"{label}: unreadable funding rows ({error})") from None
    if any(table.column(name).null_count for name in FUNDING_HEADER):
        raise DataError(f"{label}: a funding row has an empty field")
    times = table.column("calc_time").to_numpy()
    if len(times) and not ((times > 10**11) & (times < 10**14)).all():
        raise DataError(f"{label}: calc_time must be epoch milliseconds")
    hours = table.column("funding_interval_hours").to_numpy()
    return times, hours, table.column("last_funding_rate").to_numpy()


def _funding_members(path: Path) -> list[tuple[str, bytes]]:
    if not path.name.lower().endswith(".zip"):
        return [(path.name, _file_bytes(path))]
    try:
        with zipfile.ZipFile(path) as archive:
            names = [m for m in archive.namelist() if m.lower().endswith(".csv")]
            return [(f"{path.name}:{m}", archive.read(m)) for m in names]
    except (zipfile.BadZipFile, OSError, zlib.error, EOFError) as error:
        raise DataError(f"not a readable zip archive ({error})") from None


def import_funding(
    paths: list[Path],
    store: FuturesStore,
    *,
    exchange: str = "binance",
    pair: str | None = None,
    dry_run: bool = False,
) -> tuple[list[FundingOutcome], list[FundingWrite]]:
    """Read every funding file (each reported on its own), then store each pair's rows
    in one write. A file that cannot be read is an outcome with an error, not stored."""
    outcomes: list[FundingOutcome] = []
    frames: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for path in paths:
        match = _FUNDING.match(path.name)
        named = pair or (split_symbol(match["symbol"]) if match else None)
        if named is None:
            raise ConfigError(f"{path.name}: cannot tell the pair from the file name; pass --pair")
        chosen = normalize_pair(named)
        try:
            members = _funding_members(path)
        except DataError as error:
            outcomes.append(FundingOutcome(path.name, chosen, error=str(error)))
            continue
        for label, data in members:
            outcome = FundingOutcome(label, chosen)
            try:
                columns = read_funding_csv(data, label)
                times, hours, rates = columns
                check_funding(funding_frame(times, rates, hours), label)  # before any write
                outcome.rows = len(columns[0])
                frames.setdefault(chosen, []).append(columns)
            except DataError as error:
                outcome.error = str(error)
            outcomes.append(outcome)
    written: list[FundingWrite] = []
    if dry_run:
        return outcomes, written
    for chosen, parts in frames.items():
        times, hours, rates = (np.concatenate([p[i] for p in parts]) for i in range(3))
        if len(times):
            written.append(
                store.write_funding(exchange, chosen, funding_frame(times, rates, hours))
            )
    return outcomes, written


def read_markets_file(path: Path) -> dict[str, MarketRules]:
    """Market rules from our markets JSON or a saved exchangeInfo answer."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the file ({error.strerror or error})") from None
    except ValueError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    try:
        if isinstance(document, dict) and isinstance(document.get("symbols"), list):
            return _exchange_info(document["symbols"])
        return parse_markets(document)
    except (ValueError, TypeError, KeyError) as error:
        raise DataError(f"{path}: not a markets file ({error})") from None


def _exchange_info(symbols: list[Any]) -> dict[str, MarketRules]:
    """Binance's exchangeInfo (spot and USDⓈ-M futures): one market a symbol."""
    rules: dict[str, MarketRules] = {}
    for entry in symbols:
        filters = {f["filterType"]: f for f in entry.get("filters", [])}
        price = filters.get("PRICE_FILTER", {})
        lot = filters.get("LOT_SIZE", {})
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        least = notional.get("minNotional", notional.get("notional", 0))
        pair = f"{entry['baseAsset']}/{entry['quoteAsset']}"
        rules[normalize_pair(pair)] = MarketRules(
            tick_size=float(price.get("tickSize", 0)),
            amount_step=float(lot.get("stepSize", 0)),
            min_notional=float(least),
            min_amount=float(lot.get("minQty", 0)),
        )
    return rules
