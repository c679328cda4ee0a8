"""The data package's public names (its place among the stages: tests/test_layers.py)."""

from __future__ import annotations

import kinetic_rules.data as data


def test_public_names_are_pinned() -> None:
    assert set(data.__all__) == {
        "COLUMNS", "DATA_ENV", "ESTIMATED_ATTR", "CandleStore", "DownloadSummary",
        "ImportSummary", "RetryPolicy", "StoredSeries", "ValidationReport", "WriteResult",
        "align_to_base", "candle_frame", "create_exchange", "download", "import_paths",
        "is_quote_volume_estimated", "parse_timerange", "resample", "resample_with_report",
        "resolve_data_dir", "validate",
    }  # fmt: skip
    assert all(hasattr(data, name) for name in data.__all__)
