"""results.json, trades.csv, report.html: complete, byte-identical when repeated, atomic."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from kinetic_rules.backtest import report_files
from kinetic_rules.backtest.metrics import compute_metrics
from kinetic_rules.backtest.report_files import TRADE_COLUMNS, write_reports
from kinetic_rules.engine.model import BacktestResult


def test_results_json_records_everything(hand_result: BacktestResult, tmp_path: Path) -> None:
    paths = write_reports(hand_result, compute_metrics(hand_result), tmp_path / "out")
    assert set(paths) == {"json", "trades", "csv", "html"}
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["strategy"] == {
        "name": "hand built",
        "file": "strategies/hand_built.yaml",
        "sha256": "0" * 63 + "1",
    }
    assert doc["params"] == {"fast": 12, "roc_threshold": 1.5}
    assert doc["data_range"] == {"start": "2024-01-01T00:00:00Z", "end": "2024-01-10T00:00:00Z"}
    assumptions = doc["assumptions"]
    assert assumptions["fee"] == 0.001 and assumptions["slippage"] == 0.0005
    assert len(assumptions["fill_model"]) == 2 and len(assumptions["skipped"]) == 1
    assert doc["metrics"]["trades"] == 3
    assert doc["metrics"]["max_drawdown_duration_seconds"] == 4 * 86400
    assert doc["monthly_returns"] == {"2024-01": 0.1}
    assert doc["daily_equity"]["2024-01-01"] == 1010.0
    assert [row["key"] for row in doc["breakdowns"]["pair"]] == ["BTC/USDT", "ETH/USDT"]
    assert doc["trades"] == {"count": 3, "detail": "trades.json", "table": "trades.csv"}
    short = json.loads(paths["trades"].read_text(encoding="utf-8"))[2]
    assert short["side"] == "short" and short["profit"] == 130.0 and short["fees"] == 2.0
    assert [f["reason"] for f in short["fills"]] == ["entry", "trend_break"]
    assert short["fills"][1]["time"] == "2024-01-11T00:00:00Z"
    assert "elapsed_seconds" not in paths["json"].read_text(encoding="utf-8")


def test_trades_csv_has_one_row_per_trade(hand_result: BacktestResult, tmp_path: Path) -> None:
    paths = write_reports(hand_result, compute_metrics(hand_result), tmp_path)
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text(encoding="utf-8"))))
    assert len(rows) == 3
    assert tuple(rows[0]) == TRADE_COLUMNS
    assert rows[1]["exit_reason"] == "stop_loss"
    assert float(rows[1]["profit"]) == -60.0
    assert float(rows[2]["duration_minutes"]) == 5 * 24 * 60
    assert rows[0]["entry_time"] == "2024-01-01T00:00:00Z"


def test_csv_cells_never_become_spreadsheet_formulas(
    hand_result: BacktestResult, tmp_path: Path
) -> None:
    hand_result.trades[0].regime = "=HYPERLINK(1)"
    paths = write_reports(hand_result, compute_metrics(hand_result), tmp_path)
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text(encoding="utf-8"))))
    assert rows[0]["regime"] == "'=HYPERLINK(1)"
    assert rows[1]["profit"].startswith("-")  # numbers keep their sign


def test_same_result_gives_byte_identical_files(
    hand_result: BacktestResult, tmp_path: Path
) -> None:
    first = write_reports(hand_result, compute_metrics(hand_result), tmp_path / "a")
    second = write_reports(hand_result, compute_metrics(hand_result), tmp_path / "b")
    for kind in first:
        assert first[kind].read_bytes() == second[kind].read_bytes(), kind


def test_a_failed_write_leaves_the_old_file_and_no_debris(
    hand_result: BacktestResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics = compute_metrics(hand_result)
    paths = write_reports(hand_result, metrics, tmp_path)
    before = {kind: path.read_bytes() for kind, path in paths.items()}

    def crashing(data: bytes) -> Callable[[BinaryIO], object]:
        def write(handle: BinaryIO) -> None:
            handle.write(data[: len(data) // 2])
            raise OSError("disk full")

        return write

    monkeypatch.setattr(report_files, "_writer", crashing)
    hand_result.strategy_name = "changed"
    with pytest.raises(OSError, match="disk full"):
        write_reports(hand_result, metrics, tmp_path)
    assert {kind: path.read_bytes() for kind, path in paths.items()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())
