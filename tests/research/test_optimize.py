"""`optimize` on real candles: reproducible, resumable, refuses a changed file, and writes
back a file whose backtest is the best trial."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from kinetic_rules.backtest.runner import BacktestRequest, run_backtest
from kinetic_rules.cli.app import main
from kinetic_rules.errors import ConfigError
from kinetic_rules.research.objectives import metric_values
from kinetic_rules.research.run import check_inputs, optimize
from kinetic_rules.research.study import VIOLATIONS
from kinetic_rules.research.writeback import rewrite
from kinetic_rules.spec.loader import load_file
from tests.research.conftest import (
    ENTRY,
    KE,
    WARMUP,
    optimize_reports,
    options_for,
    request_for,
)


def _trials(url: str, name: str = "Kinetic Empire") -> list[tuple[int, object, dict[str, object]]]:
    study = optuna.load_study(study_name=name, storage=url)
    return [(t.number, t.value, t.params) for t in study.trials]


def test_the_same_seed_gives_the_same_study_in_one_process_and_on_two_workers(
    fixture_store: Path, tmp_path: Path
) -> None:
    one, two = f"sqlite:///{tmp_path / 'one.sqlite'}", f"sqlite:///{tmp_path / 'two.sqlite'}"
    # 20 trials: the third round is asked after 16 results, past TPE's 10 random ones
    optimize(KE, request_for(fixture_store), options_for(one, seed=7, trials=20))
    optimize(KE, request_for(fixture_store), options_for(two, seed=7, trials=20, workers=2))
    first, second = _trials(one), _trials(two)
    assert len(first) == 20 and first == second
    assert all(isinstance(params["rsi_min"], int) for _, _, params in first)
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    optimize(KE, request_for(fixture_store), options_for(other, seed=8, trials=3))
    assert _trials(other) != first[:3]


def test_the_same_seed_writes_the_same_report_with_or_without_the_cache_and_workers(
    fixture_store: Path, tmp_path: Path
) -> None:
    kept = optimize_reports(fixture_store, tmp_path / "kept")
    computed = optimize_reports(fixture_store, tmp_path / "computed", "--cache-mb", "0",
                                "--workers", "2")  # fmt: skip
    assert computed == kept


def test_a_study_resumes_and_only_runs_the_trials_left(fixture_store: Path, study_url: str) -> None:
    _, first = optimize(KE, request_for(fixture_store), options_for(study_url, trials=8))
    assert first.result.ran == 8
    _, again = optimize(KE, request_for(fixture_store), options_for(study_url, trials=12))
    assert again.result.ran == 4 and len(_trials(study_url)) == 12


def test_a_study_of_another_file_is_refused_unless_new_study(
    fixture_store: Path, study_url: str, tmp_path: Path
) -> None:
    optimize(KE, request_for(fixture_store), options_for(study_url, trials=2))
    changed = tmp_path / "kinetic_empire.yaml"
    changed.write_text(KE.read_text().replace("rsi_max: {value: 65", "rsi_max: {value: 66"))
    request = request_for(fixture_store, strategy=changed)
    with pytest.raises(ConfigError, match="different strategy"):
        optimize(changed, request, options_for(study_url, trials=2))
    _, fresh = optimize(changed, request, options_for(study_url, trials=2, new_study=True))
    assert fresh.result.ran == 2 and len(_trials(study_url)) == 2


def test_trials_a_killed_driver_left_running_are_run_again(
    fixture_store: Path, study_url: str
) -> None:
    optimize(KE, request_for(fixture_store), options_for(study_url, trials=4))
    study = optuna.load_study(study_name="Kinetic Empire", storage=study_url)
    abandoned = study.ask({"rsi_min": optuna.distributions.IntDistribution(0, 100)})
    abandoned.suggest_float("roc_threshold", 0, 10)
    values = dict(abandoned.params)  # the driver died here: the trial stays RUNNING
    optimize(KE, request_for(fixture_store), options_for(study_url, trials=6))
    trials = optuna.load_study(study_name="Kinetic Empire", storage=study_url).trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6 and values in [t.params for t in complete]


def test_a_constraint_keeps_breaking_trials_out_of_best(
    fixture_store: Path, study_url: str
) -> None:
    options = options_for(study_url, constraints=["trades >= 1000"], objective="sharpe")
    _, found = optimize(KE, request_for(fixture_store), options)
    assert found.result.best is None
    assert all(t.user_attrs[VIOLATIONS][0] > 0 for t in found.result.trials)
    assert found.best_values == {"rsi_min": 45, "roc_threshold": 1.5}  # the file's own


def test_the_written_file_backtests_to_the_best_trial(fixture_store: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    report = tmp_path / "report"
    code = main(["optimize", str(KE), "--data", str(fixture_store), "--study", url,
                 "--params", ",".join(ENTRY), "--objective", "total_return", "--trials", "10",
                 "--warmup", "2d", "--report", str(report), "--quiet"])  # fmt: skip
    assert code == 0
    document = json.loads((report / "report.json").read_text())
    tuned = report / "kinetic_empire.optimized.yaml"
    original, written = KE.read_text().splitlines(), tuned.read_text().splitlines()
    changed = [i for i, (a, b) in enumerate(zip(original, written, strict=True)) if a != b]
    assert all(original[i].split("{value:")[0] == written[i].split("{value:")[0] for i in changed)
    assert len(changed) <= len(ENTRY)  # comments and every other line untouched
    result = run_backtest(BacktestRequest(strategy=tuned, data_dir=fixture_store, warmup=WARMUP))
    from kinetic_rules.backtest.metrics import compute_metrics

    rerun = metric_values(compute_metrics(result))
    assert rerun["total_return"] == pytest.approx(document["best_value"], rel=1e-9, abs=1e-12)
    assert "<svg" in (report / "report.html").read_text()


def test_rewrite_keeps_a_percentage_a_percentage(tmp_path: Path) -> None:
    loaded = load_file(KE)
    checked = check_inputs(KE, options_for("sqlite://", params=["trail_activation", "rsi_min"]))
    text = rewrite(loaded, checked.space, {"trail_activation": 0.031, "rsi_min": 40})
    assert "trail_activation: {value: 3.1%," in text and "rsi_min: {value: 40," in text
    path = tmp_path / "tuned.yaml"
    path.write_text(text)
    params = load_file(path).strategy.params
    assert params["rsi_min"].value == 40 and params["trail_activation"].value == "3.1%"


def test_a_grid_tries_each_step_once_and_stops(
    fixture_store: Path, study_url: str, tmp_path: Path
) -> None:
    stepped = tmp_path / "kinetic_empire.yaml"
    stepped.write_text(
        KE.read_text().replace("rsi_min: {value: 45,", "rsi_min: {value: 40, step: 20,")
    )
    request = request_for(fixture_store, strategy=stepped)
    options = options_for(study_url, params=["rsi_min"], sampler="grid", trials=100)
    _, found = optimize(stepped, request, options)
    assert found.result.ran == 6
    assert sorted(t.params["rsi_min"] for t in found.result.trials) == [0, 20, 40, 60, 80, 100]


def test_a_study_url_that_cannot_be_opened_is_a_user_error(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["optimize", str(KE), "--data", str(fixture_store), "--study", "nosuchdb://x",
                 "--report", str(tmp_path / "r"), "--quiet", "--trials", "2"])  # fmt: skip
    assert code == 2 and "--study nosuchdb://x: cannot open it" in capsys.readouterr().err
