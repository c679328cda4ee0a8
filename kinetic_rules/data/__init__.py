"""Market data: candles in, validated, stored, resampled and aligned for the compiler.

Stages, one module each: `readers` (file layouts) → `validate` → `importers` (the
`data import` command) and `download` (ccxt) → `store` (Parquet) → `resample` and
`align`. Nothing here imports a later stage of kinetic-rules.

A backtest reads the store and never imports candle files or downloads: the importers
(with the file readers) and the downloader (with the exchange client) are imported when
one of their names is first used, not with the package.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from kinetic_rules.data.align import align_to_base
from kinetic_rules.data.candles import (
    COLUMNS,
    ESTIMATED_ATTR,
    candle_frame,
    is_quote_volume_estimated,
)
from kinetic_rules.data.resample import resample, resample_with_report
from kinetic_rules.data.store import (
    DATA_ENV,
    CandleStore,
    StoredSeries,
    WriteResult,
    resolve_data_dir,
)
from kinetic_rules.data.timerange import parse_timerange
from kinetic_rules.data.validate import ValidationReport, validate

if TYPE_CHECKING:
    from kinetic_rules.data.download import DownloadSummary, download
    from kinetic_rules.data.exchange import RetryPolicy, create_exchange
    from kinetic_rules.data.importers import ImportSummary, import_paths

_LATER = {
    "DownloadSummary": "download",
    "download": "download",
    "RetryPolicy": "exchange",
    "create_exchange": "exchange",
    "ImportSummary": "importers",
    "import_paths": "importers",
}

__all__ = [
    "COLUMNS",
    "DATA_ENV",
    "ESTIMATED_ATTR",
    "CandleStore",
    "DownloadSummary",
    "ImportSummary",
    "RetryPolicy",
    "StoredSeries",
    "ValidationReport",
    "WriteResult",
    "align_to_base",
    "candle_frame",
    "create_exchange",
    "download",
    "import_paths",
    "is_quote_volume_estimated",
    "parse_timerange",
    "resample",
    "resample_with_report",
    "resolve_data_dir",
    "validate",
]


def __getattr__(name: str) -> Any:
    """A name of the importers or the downloader: its module is imported on first use."""
    module = _LATER.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """`kinetic_rules.data.download` names the function, as it did when the package
    imported it eagerly, even once the import system has bound the submodule of that
    name to the package (which it does whenever the submodule is first imported)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "download" and isinstance(value, types.ModuleType):
            value = value.download
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
