"""Shared pieces of the research tests: Kinetic Empire on the real-candle fixture store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kinetic_rules.backtest.runner import BacktestRequest
from kinetic_rules.research.run import OptimizeOptions
from tests.conftest import STRATEGIES

KE = STRATEGIES / "kinetic_empire.yaml"
WARMUP = 2 * 86_400  # the fixtures hold a month of 5m candles: accept a short warm-up
ENTRY = ["rsi_min", "roc_threshold"]


def request_for(store: Path, **changes: object) -> BacktestRequest:
    request = BacktestRequest(strategy=KE, data_dir=store, warmup=WARMUP)
    for name, value in changes.items():
        setattr(request, name, value)
    return request


def options_for(url: str, **changes: object) -> OptimizeOptions:
    options = OptimizeOptions(
        params=list(ENTRY), objective="total_return", trials=12, study_url=url
    )
    for name, value in changes.items():
        setattr(options, name, value)
    return options


def optimize_reports(store: Path, folder: Path, *flags: str) -> tuple[dict[str, object], str]:
    """`optimize` of the entry thresholds through the CLI, seed 3: its report.json (less
    the two paths that name the run's own files) and the tuned file it wrote."""
    from kinetic_rules.cli.app import main

    command = ["optimize", str(KE), "--data", str(store), "--params", ",".join(ENTRY),
               "--objective", "total_return", "--trials", "10", "--seed", "3", "--warmup",
               "2d", "--study", f"sqlite:///{folder}.sqlite", "--report", str(folder),
               "--quiet", *flags]  # fmt: skip
    assert main(command) == 0
    document = json.loads((folder / "report.json").read_text())
    for where in ("study", "tuned_file"):
        document.pop(where)
    return document, (folder / "kinetic_empire.optimized.yaml").read_text()


@pytest.fixture
def study_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.sqlite'}"
