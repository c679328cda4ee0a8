"""The data package's public names, and its place among the stages."""

from __future__ import annotations

import ast
from pathlib import Path

import kinetic_rules.data as data

LATER_STAGES = ("lang", "spec", "compile", "engine", "backtest", "live", "cli", "persist")


def test_public_names_are_pinned() -> None:
    assert set(data.__all__) == {
        "COLUMNS", "DATA_ENV", "ESTIMATED_ATTR", "CandleStore", "DownloadSummary",
        "ImportSummary", "RetryPolicy", "StoredSeries", "ValidationReport", "WriteResult",
        "align_to_base", "candle_frame", "create_exchange", "download", "import_paths",
        "is_quote_volume_estimated", "parse_timerange", "resample", "resample_with_report",
        "resolve_data_dir", "validate",
    }  # fmt: skip
    assert all(hasattr(data, name) for name in data.__all__)


def test_the_data_layer_imports_no_later_stage() -> None:
    for path in Path(data.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                later = parts[0] == "kinetic_rules" and len(parts) > 1 and parts[1] in LATER_STAGES
                assert not later, f"{path.name} imports {name}"
