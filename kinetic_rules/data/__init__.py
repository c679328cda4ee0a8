"""Market data: candles in, validated, stored, resampled and aligned for the compiler.

Stages, one module each: `readers` (file layouts) → `validate` → `importers` (the
`data import` command) and `download` (ccxt) → `store` (Parquet) → `resample` and
`align`. Nothing here imports a later stage of kinetic-rules.
"""

from kinetic_rules.data.align import align_to_base
from kinetic_rules.data.candles import (
    COLUMNS,
    ESTIMATED_ATTR,
    candle_frame,
    is_quote_volume_estimated,
)
from kinetic_rules.data.download import DownloadSummary, download
from kinetic_rules.data.exchange import RetryPolicy, create_exchange
from kinetic_rules.data.importers import ImportSummary, import_paths
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
