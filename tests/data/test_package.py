"""The data package's public names (its place among the stages: tests/test_layers.py)."""

from __future__ import annotations

import json

import kinetic_rules.data as data
from tests.security.helpers import environment, python


def test_public_names_are_pinned() -> None:
    assert set(data.__all__) == {
        "COLUMNS", "DATA_ENV", "ESTIMATED_ATTR", "CandleStore", "DownloadSummary",
        "ImportSummary", "RetryPolicy", "StoredSeries", "ValidationReport", "WriteResult",
        "align_to_base", "candle_frame", "create_exchange", "download", "import_paths",
        "is_quote_volume_estimated", "parse_timerange", "resample", "resample_with_report",
        "resolve_data_dir", "validate",
    }  # fmt: skip
    assert all(hasattr(data, name) for name in data.__all__)


LOADED = """
import json, sys
import kinetic_rules.data as data
from kinetic_rules.data import CandleStore
before = sorted(name for name in sys.modules if name.startswith("kinetic_rules.data."))
import kinetic_rules.data.download
from kinetic_rules.data import create_exchange, download, import_paths
print(json.dumps({
    "before": before,
    "download": download.__module__ + "." + download.__qualname__,
    "names": [f.__module__ for f in (create_exchange, import_paths, data.download)],
}))
"""


def test_the_package_leaves_importers_and_downloader_until_their_names_are_used() -> None:
    """A backtest imports the store through this package; the importers (with the file
    readers) and the downloader (with the exchange client) are not its business."""
    done = python(LOADED, env=environment())
    report = json.loads(done.stdout)
    later = {"download", "exchange", "importers", "readers"}
    assert not {name.rsplit(".", 1)[1] for name in report["before"]} & later
    assert "kinetic_rules.data.store" in report["before"]
    # `download` names the function, even once its module has been imported
    assert report["download"] == "kinetic_rules.data.download.download"
    assert report["names"] == [
        "kinetic_rules.data.exchange",
        "kinetic_rules.data.importers",
        "kinetic_rules.data.download",
    ]
