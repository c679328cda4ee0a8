"""Shared pieces of the research tests: Kinetic Empire on the real-candle fixture store."""

from __future__ import annotations

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


@pytest.fixture
def study_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.sqlite'}"
