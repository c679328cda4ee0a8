"""Walk-forward on real candles: no candle of a test window reaches its training search."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.cli.app import main
from kinetic_rules.data.store import CandleStore
from kinetic_rules.research.run import check_inputs
from kinetic_rules.research.walkforward import (
    Schedule,
    in_sample,
    parse_schedule,
    plan_windows,
    train_window,
    walk_forward,
)
from tests.research.conftest import KE, options_for, request_for

SCHEDULE = Schedule(pd.Timedelta(days=8), pd.Timedelta(days=4), pd.Timedelta(days=4))


def _store_cut_at(source: Path, cut: pd.Timestamp, target: Path) -> Path:
    """A copy of the store holding only candles that open before `cut`."""
    shutil.copytree(source, target)
    store = CandleStore(target)
    for series in store.available():
        frame = store.read(series.exchange, series.pair, series.timeframe)
        kept = frame[frame.index < cut]
        if len(kept) < len(frame) and len(kept):
            store.write(series.exchange, series.pair, series.timeframe, kept, replace=True)
    return target


def test_windows_move_by_the_step_or_grow_when_anchored() -> None:
    first, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-02-01", tz="UTC")
    moving = plan_windows(SCHEDULE, first, end)
    assert [w.train_start.day for w in moving] == [1, 5, 9, 13, 17]
    assert all(w.test_end <= end and w.train_end - w.train_start == SCHEDULE.train for w in moving)
    anchored = plan_windows(
        Schedule(SCHEDULE.train, SCHEDULE.test, SCHEDULE.step, True), first, end
    )
    assert {w.train_start for w in anchored} == {first} and len(anchored) == len(moving)
    assert parse_schedule("60d", "30d", None, False).step == pd.Timedelta(days=30)


def test_a_training_search_never_reads_a_candle_of_its_test_window(
    fixture_store: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'full.sqlite'}"
    options = options_for(url, trials=6, seed=3)
    checked = check_inputs(KE, options)
    result = walk_forward(checked, request_for(fixture_store), SCHEDULE, options, url)
    assert len(result.windows) >= 3
    for window in result.windows[:2]:
        cut = _store_cut_at(
            fixture_store, window.window.train_end, tmp_path / f"cut{window.window.index}"
        )
        alone = f"sqlite:///{tmp_path / f'cut{window.window.index}.sqlite'}"
        options = options_for(alone, trials=6, seed=3)
        again = train_window(checked, request_for(cut), window.window, options, alone, "x")
        assert again.best_values == window.params
        assert in_sample(again) == window.in_sample


def test_walkforward_writes_the_stitched_equity_and_the_report(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "wf"
    code = main(["walkforward", str(KE), "--data", str(fixture_store), "--warmup", "2d",
                 "--train", "8d", "--test", "4d", "--params", "rsi_min", "--trials", "6",
                 "--objective", "total_return", "--study", f"sqlite:///{tmp_path / 's.sqlite'}",
                 "--report", str(report), "--quiet"])  # fmt: skip
    assert code == 0
    assert "out-of-sample return, stitched" in capsys.readouterr().out
    document = json.loads((report / "report.json").read_text())
    windows = document["windows"]
    assert len(windows) >= 3 and all(isinstance(w["params"]["rsi_min"], int) for w in windows)
    for before, after in itertools.pairwise(windows):
        assert before["test_end"] == after["train_end"]  # test windows tile the span
    out = 1.0
    for w in windows:
        out *= 1 + w["out_of_sample"]["total_return"]
    assert document["out_of_sample_return"] == pytest.approx(out - 1, abs=1e-9)
    html = (report / "report.html").read_text()
    assert html.count("<svg") >= 2 and "Stability of the chosen values" in html
