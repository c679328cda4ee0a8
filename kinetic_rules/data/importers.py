"""`data import`: find candle files, name their pair and timeframe, validate, store.

Nothing is written until every path is understood (an unknown file name is a
ConfigError before any import). Each file is validated on its own and reported on
its own, then checked against what the series already holds (the store, and the
files before it in this import): prices that cannot be the pair's refuse the file
(data/seams.py). Files of one series (say twelve monthly zips) are then merged and
written in one atomic step, later files winning where they overlap.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from kinetic_rules.data.candles import check_timeframe, is_quote_volume_estimated
from kinetic_rules.data.pairs import (
    normalize_pair,
    pair_from_filename,
    parse_pair,
    split_symbol,
    strategy_pair,
)
from kinetic_rules.data.readers import CandleSource, is_candle_file, sources_in
from kinetic_rules.data.seams import seam_issue
from kinetic_rules.data.store import MARKETS, CandleStore, WriteResult, check_exchange
from kinetic_rules.data.validate import ValidationReport, validate
from kinetic_rules.errors import ConfigError, DataError
from kinetic_rules.files import check_regular

_TIMEFRAME = r"(?P<tf>[0-9]+[smhdwM])"
# freqtrade: BTC_USDT-5m.feather, BTC_USDT_USDT-1h-futures.feather, BTC_USDT-1d.json.gz
_FREQTRADE = re.compile(
    rf"^(?P<stem>[A-Za-z0-9.]+(?:_[A-Za-z0-9.]+){{1,2}})-{_TIMEFRAME}"
    r"(?:-(?P<kind>spot|futures|mark|index|premiumIndex|funding_rate))?"
    r"\.(?:feather|json|json\.gz|jsongz)$"
)
# the exchange's bulk files: BTCUSDT-15m.csv.gz, BTCUSDT-1h-2024-01.zip, BTCUSDT-1m-2025-01-05.csv
_BULK = re.compile(
    rf"^(?P<symbol>[A-Za-z0-9]+)-{_TIMEFRAME}(?:-\d{{4}}-\d{{2}}(?:-\d{{2}})?)?"
    r"\.(?:csv|csv\.gz|zip)$"
)


@dataclass(frozen=True)
class PlannedSource:
    source: CandleSource
    pair: str  # as strategies name it: a perpetual's candles are stored under BTC/USDT
    timeframe: str
    market: str | None  # "spot" or "futures"; None when neither the name nor a flag says


@dataclass
class FileOutcome:
    label: str
    pair: str
    timeframe: str
    report: ValidationReport | None = None
    error: str | None = None  # the file could not be read at all

    @property
    def rejected(self) -> bool:
        return self.error is not None or (self.report is not None and self.report.fatal)

    @property
    def empty(self) -> bool:
        return not self.rejected and self.report is not None and self.report.candles_kept == 0


@dataclass
class ImportSummary:
    files: list[FileOutcome] = field(default_factory=list)
    written: list[WriteResult] = field(default_factory=list)

    @property
    def rejected(self) -> list[FileOutcome]:
        return [f for f in self.files if f.rejected]


def identify(name: str) -> tuple[str | None, str | None]:
    """(pair, timeframe) from a file name in either layout; None where the name says nothing."""
    match = _FREQTRADE.match(name)
    if match:
        if match["kind"] in ("mark", "index", "premiumIndex", "funding_rate"):
            raise ConfigError(f"{name}: holds {match['kind']} data, not traded candles")
        return pair_from_filename(match["stem"]), match["tf"]
    match = _BULK.match(name)
    if match:
        return split_symbol(match["symbol"]), match["tf"]
    return None, None


def market_of(name: str, pair: str | None) -> str | None:
    """What a file's name (or a futures pair such as BTC/USDT:USDT) says of its market:
    freqtrade names its futures files `-futures` and its spot files plainly; the
    exchange's bulk files are named alike for both, so they say nothing."""
    if pair is not None and parse_pair(pair).settle:
        return "futures"
    match = _FREQTRADE.match(name)
    if match is None:
        return None
    return "futures" if match["kind"] == "futures" else "spot"


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given, and the candle files inside given directories (sorted, recursive)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_candle_file(p)))
        elif path.exists() and not path.is_file():
            raise ConfigError(f"{path}: {_not_regular(path)}")
        elif path.is_file():
            if not is_candle_file(path):
                raise ConfigError(
                    f"{path}: not a candle file (expected .csv, .csv.gz, .zip, "
                    ".feather, .json or .json.gz)"
                )
            found.append(path)
        else:
            raise ConfigError(f"{path}: no such file or directory")
    return found


def _not_regular(path: Path) -> str:
    try:
        check_regular(path)
    except OSError as problem:
        return problem.strerror or str(problem)
    return "not a regular file"


def plan_import(
    paths: list[Path],
    *,
    pair: str | None = None,
    timeframe: str | None = None,
    market: str | None = None,
) -> tuple[list[PlannedSource], list[FileOutcome]]:
    """Name every source before reading any; archives that cannot be opened are outcomes."""
    override_pair = normalize_pair(pair) if pair else None
    override_tf = check_timeframe(timeframe) if timeframe else None
    if market is not None and market not in MARKETS:
        raise ConfigError(f"--market {market}: use one of {', '.join(MARKETS)}")
    planned: list[PlannedSource] = []
    unreadable: list[FileOutcome] = []
    files = expand_paths(paths)
    if not files:
        raise ConfigError(f"no candle files found in {', '.join(str(p) for p in paths)}")
    for path in files:
        try:
            sources = sources_in(path)
        except DataError as error:
            named_pair, named_tf = identify(path.name)
            pair_label, tf_label = override_pair or named_pair, override_tf or named_tf
            outcome = FileOutcome(path.name, pair_label or "?", tf_label or "?", error=str(error))
            unreadable.append(outcome)
            continue
        for source in sources:
            named_pair, named_tf = identify(source.name)
            chosen_pair = override_pair or named_pair
            chosen_tf = override_tf or named_tf
            if chosen_pair is None or chosen_tf is None:
                missing = " and ".join(
                    flag
                    for flag, value in (("--pair", chosen_pair), ("--timeframe", chosen_tf))
                    if value is None
                )
                raise ConfigError(
                    f"{source.label}: cannot tell the "
                    f"{'pair' if chosen_pair is None else 'timeframe'} from the file name; "
                    f"name it like BTCUSDT-1h.csv.gz or BTC_USDT-1h.feather, or pass {missing}"
                )
            try:
                chosen_pair = normalize_pair(chosen_pair)
                planned.append(
                    PlannedSource(
                        source,
                        strategy_pair(chosen_pair),
                        check_timeframe(chosen_tf),
                        market or market_of(source.name, chosen_pair),
                    )
                )
            except ConfigError as error:
                raise ConfigError(f"{source.label}: {error}") from None
    return planned, unreadable


def import_paths(
    paths: list[Path],
    store: CandleStore,
    *,
    exchange: str = "binance",
    pair: str | None = None,
    timeframe: str | None = None,
    market: str | None = None,
    drop_bad_rows: bool = False,
    dry_run: bool = False,
    accept_price_jump: bool = False,
    now_ns: int | None = None,
    on_file: Callable[[FileOutcome], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImportSummary:
    """Validate every file, report each through `on_file`, and store the accepted ones;
    `progress(phase, done, total)` hears of the phases: checking, then storing.

    `now_ns` is the import time candles may not be dated after (default: the clock);
    `accept_price_jump` imports a file whose prices jump at the seam with stored data,
    with a warning instead of refusing it. `market` ("spot" or "futures") says what the
    files hold where their names do not; spot and futures candles never share a series.
    """
    check_exchange(exchange)
    planned, unreadable = plan_import(paths, pair=pair, timeframe=timeframe, market=market)
    summary = ImportSummary(files=list(unreadable))
    for outcome in unreadable:
        if on_file:
            on_file(outcome)
    accepted: dict[tuple[str, str], list[pd.DataFrame]] = {}
    markets: dict[tuple[str, str], str | None] = {}
    stored: dict[tuple[str, str], pd.DataFrame | None] = {}
    for done, item in enumerate(planned):
        if progress:
            progress("checking", done, len(planned))
        outcome = FileOutcome(item.source.label, item.pair, item.timeframe)
        try:
            raw = item.source.read()
            frame, outcome.report = validate(
                raw,
                item.timeframe,
                item.source.label,
                drop_bad_rows=drop_bad_rows,
                now_ns=now_ns,
            )
            key = (item.pair, item.timeframe)
            markets[key] = _series_market(store, exchange, key, item.market, markets.get(key))
            if frame is not None and len(frame):
                held = _held(store, exchange, key, stored, accepted.get(key, []))
                seam = seam_issue(frame, held, item.pair)
                if seam is not None:
                    outcome.report.issues.append(replace(seam, fatal=not accept_price_jump))
                    frame = frame if accept_price_jump else None
        except DataError as error:
            outcome.error = str(error)
            frame = None
        summary.files.append(outcome)
        if on_file:
            on_file(outcome)
        if frame is not None and len(frame):
            accepted.setdefault((item.pair, item.timeframe), []).append(frame)
    if dry_run:
        return summary
    for done, ((series_pair, series_tf), frames) in enumerate(accepted.items()):
        if progress:
            progress("storing", done, len(accepted))
        market_held = markets.get((series_pair, series_tf))
        for batch in _combine(frames):
            written = store.write(exchange, series_pair, series_tf, batch, market=market_held)
            summary.written.append(written)
    return summary


def _series_market(
    store: CandleStore,
    exchange: str,
    key: tuple[str, str],
    market: str | None,
    earlier: str | None,
) -> str | None:
    """The market a file's series is stored as; DataError when the store, or an earlier
    file of this import, holds the other market under the same name."""
    if market is not None and earlier is not None and market != earlier:
        raise DataError(
            f"{key[0]} {key[1]}: this import holds both {earlier} and {market} candles of it; "
            "import spot and futures files into separate data directories (--data DIR)"
        )
    return store.check_market(exchange, *key, market or earlier)


def _held(
    store: CandleStore,
    exchange: str,
    key: tuple[str, str],
    stored: dict[tuple[str, str], pd.DataFrame | None],
    accepted: list[pd.DataFrame],
) -> pd.DataFrame | None:
    """What the series holds before the next file: the store, then this import's files."""
    if key not in stored:
        stored[key] = store.read(exchange, *key) if store.find(exchange, *key) else None
    frames = [f for f in (stored[key], *accepted) if f is not None]
    if len(frames) <= 1:
        return frames[0] if frames else None
    both = pd.concat(frames)
    return both[~both.index.duplicated(keep="last")].sort_index(kind="stable")


def _combine(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Few writes for the files of one series; a later file wins where two overlap.

    Files whose quote volume is real and files where it is estimated are written one
    after the other, so that the store keeps track of which candles are estimates.
    """
    if len({is_quote_volume_estimated(f) for f in frames}) > 1:
        return frames
    if len(frames) == 1:
        return frames
    both = pd.concat(frames)
    merged = both[~both.index.duplicated(keep="last")].sort_index(kind="stable")
    merged.attrs["quote_volume_estimated"] = is_quote_volume_estimated(frames[0])
    return [merged]
