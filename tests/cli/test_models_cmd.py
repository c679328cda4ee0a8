"""`kinetic-rules models FILE`: the training history in the terminal and as a page."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinetic_rules.cli.app import main
from tests.conftest import STRATEGIES

PREDICTED = Path(__file__).parents[1] / "models" / "strategies" / "predicted.yaml"


def test_models_shows_every_window_and_writes_the_page(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report"
    code = main(
        ["models", str(PREDICTED), "--data", str(fixture_store), "--pairs", "BTC/USDT",
         "--timerange", "20240301-", "--report", str(report), "--quiet"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "Model trend (random_forest)" in out
    assert "2024-03-02" in out and "2024-02-27" not in out  # only the windows asked for
    assert "out-of-sample accuracy" in out
    page = (report / "models.html").read_text()
    for part in ("Feature weights", "Calibration", "Every window", "atr_ratio", "BTC/USDT"):
        assert part in page


def test_a_span_without_a_model_says_why(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["models", str(PREDICTED), "--data", str(fixture_store), "--pairs", "ETH/USDT",
         "--timerange", "-20240218", "--report", str(tmp_path), "--quiet"]
    )  # fmt: skip
    assert code == 0
    assert "fewer than min_samples 100" in capsys.readouterr().out


def test_a_file_without_models_is_refused(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["models", str(STRATEGIES / "kinetic_empire.yaml"), "--data", str(fixture_store),
         "--report", str(tmp_path), "--quiet"]
    )  # fmt: skip
    assert code == 2
    assert "declares no models" in capsys.readouterr().err
