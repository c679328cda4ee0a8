"""The warm-up as a user meets it: one line, not one per pair and an empty backtest; a
shorter warm-up accepted in the file or with --warmup; what it costs, stated in the report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from kinetic_rules.cli.app import main
from kinetic_rules.compile.convergence import slowest_indicator
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_file
from tests.conftest import STRATEGIES

KE = STRATEGIES / "kinetic_empire.yaml"


def backtest(store: Path, report: Path, *more: str) -> dict[str, object]:
    args = ["backtest", str(KE), "--data", str(store), "--report", str(report), "-q", *more]
    assert main(args) == 0
    document = json.loads((report / "results.json").read_text())
    assumptions = document["assumptions"]
    assert isinstance(assumptions, dict)
    return assumptions


def test_the_seed_weight_of_the_slowest_ema_is_reported(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kinetic Empire's daily EMA(50) after its 150 daily candles: (1 − 2/51)^150."""
    warmup = backtest(fixture_store, tmp_path, "--pairs", "BTC/USDT", "ETH/USDT")["warmup"]
    assert warmup == [
        "150 days (the strategy's full warm-up); slowest indicator ema(close, 50)@1d after "
        "150 candles: 99.75% converged (its starting value still weighs 0.25%)"
    ]
    assert f"{(1 - 2 / 51) ** 150:.2%}" == "0.25%"
    assert "Warm-up" in capsys.readouterr().out


def test_pairs_short_of_warm_up_share_one_line(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SOL's daily candles start 2024-01-01: 150 of them end after the data does."""
    assumptions = backtest(fixture_store, tmp_path, "--pairs", "BTC/USDT", "SOL/USDT")
    warmup = assumptions["warmup"]
    assert isinstance(warmup, list) and len(warmup) == 2
    assert warmup[1].startswith(
        "not traded, their data ends inside the warm-up of 150 days: SOL/USDT (from 2024-05-31)"
    )
    assert not any("SOL" in line for line in assumptions["skipped"])  # type: ignore[attr-defined]


def test_a_shorter_warm_up_lets_a_young_pair_trade_and_says_what_it_costs(
    fixture_store: Path, tmp_path: Path
) -> None:
    assumptions = backtest(
        fixture_store, tmp_path, "--pairs", "SOL/USDT", "--warmup", "30d", "--timerange",
        "20240201-",
    )  # fmt: skip
    assert assumptions["warmup"] == [
        "30 days, shorter than the 150 days the indicators need (accepted in backtest.warmup "
        "or --warmup); slowest indicator ema(close, 50)@1d after 30 candles: 69.89% converged "
        "(its starting value still weighs 30.11%)",
        "the timerange starts 2024-02-01 00:00, inside the warm-up of 30 days: the first "
        "candle that can trade is 2024-02-17 00:00",
    ]
    trades = json.loads((tmp_path / "trades.json").read_text())
    assert trades and min(t["entry_time"] for t in trades) >= "2024-02-17"


def test_backtest_warmup_in_the_file_does_the_same(fixture_store: Path, tmp_path: Path) -> None:
    text = KE.read_text()
    assert "\nbacktest:\n" in text
    shorter = tmp_path / "shorter.yaml"
    shorter.write_text(text.replace("\nbacktest:\n", "\nbacktest:\n  warmup: 30d\n", 1))
    args = ["backtest", str(shorter), "--data", str(fixture_store), "--pairs", "SOL/USDT"]
    assert main([*args, "--report", str(tmp_path / "out"), "-q"]) == 0
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["assumptions"]["warmup"][0].startswith("30 days, shorter than the 150 days")


def test_all_pairs_short_of_warm_up_is_one_error_with_the_first_date(
    fixture_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["backtest", str(KE), "--data", str(fixture_store), "--pairs", "SOL/USDT", "-q"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "error: nothing can trade: the strategy needs 150 days of warm-up and every pair's "
        "data ends before it is over (the first, SOL/USDT, could trade from 2024-05-31"
    )
    assert "--warmup" in err


@pytest.mark.parametrize("flag", ["30", "thirty days", "0d", "-5d"])
def test_a_bad_warmup_flag_is_refused(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", str(KE), f"--warmup={flag}"]) == 2
    assert f"--warmup {flag}: '{flag}' is not a duration" in capsys.readouterr().err


def test_the_seed_weight_follows_the_candles_waited_for() -> None:
    plan = build_plan(check(load_file(KE), {}))
    assert slowest_indicator(plan) is not None
    short = replace(plan, accepted_warmup=86400)
    slowest = slowest_indicator(short)
    assert slowest is not None and slowest.candles == 1
    assert slowest.seed_weight == pytest.approx(1 - 2 / 51)
