"""`kinetic-rules backtest` and `explain` as a user runs them, on the real-candle store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.cli.app import main
from tests.conftest import STRATEGIES

KE = str(STRATEGIES / "kinetic_empire.yaml")


def test_backtest_prints_a_summary_and_writes_every_report(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = main(["backtest", KE, "--data", str(fixture_store), "--report", str(out),
                 "--export", "signals", "--quiet"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "Totals" in printed and "Per exit reason" in printed and "tight_spread" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["strategy"]["sha256"] and results["params"]["roc_threshold"] == 1.5
    trades = json.loads((out / "trades.json").read_text())
    assert results["trades"] == {
        "count": len(trades),
        "detail": "trades.json",
        "table": "trades.csv",
    }
    assert (out / "trades.csv").read_text().count("\n") == len(trades) + 1
    assert "<svg" in (out / "report.html").read_text()
    signals = pd.read_parquet(out / "signals-SOL_USDT.parquet")
    for name in ("macro_trend", "micro_trend", "momentum", "pullback", "volume"):
        assert signals[f"entry.long.{name}"].dtype == bool
    assert set(signals["regime"].unique()) <= {"bull", "bear"}


def test_set_changes_the_run_and_is_checked(
    fixture_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", KE, "--data", str(fixture_store), "--set", "roc_threshold=99",
                 "--quiet"]) == 2  # fmt: skip
    assert "above the largest allowed value" in capsys.readouterr().err


def test_an_empty_store_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", KE, "--data", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "import or download" in err and "Traceback" not in err


def test_explain_shows_each_condition_its_operands_and_the_open_trade(
    fixture_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["explain", KE, "--data", str(fixture_store), "--pair", "BTC/USDT",
                 "--at", "2024-02-28T16:00"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "entry long: no signal — 4 of 5 conditions hold" in out
    assert "✗ momentum: roc(close, 12) > $roc_threshold  →  false" in out
    assert "$roc_threshold = 1.5" in out
    assert "regime: bull" in out
    assert "trade #" in out and "stop after this close" in out
    assert "trailing atr_trail: not active yet" in out


@pytest.mark.parametrize(
    ("at", "message"),
    [("2030-01-01", "outside them"), ("yesterday-ish", "not a time")],
)
def test_explain_rejects_times_it_cannot_answer(
    fixture_store: Path, capsys: pytest.CaptureFixture[str], at: str, message: str
) -> None:
    code = main(["explain", KE, "--data", str(fixture_store), "--pair", "BTC/USDT", "--at", at])
    assert code == 2 and message in capsys.readouterr().err


def test_explain_shows_when_the_trailing_stop_switched_on(
    fixture_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["explain", KE, "--data", str(fixture_store), "--pair", "BTC/USDT",
                 "--at", "2024-02-28T17:05", "--no-trades"])  # fmt: skip
    assert code == 0 and "trade #" not in capsys.readouterr().out
    assert main(["explain", KE, "--data", str(fixture_store), "--pair", "BTC/USDT",
                 "--at", "2024-02-28T17:05"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "trailing atr_trail: active since 2024-02-28" in out


def test_a_timerange_after_the_data_is_refused(
    fixture_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["backtest", KE, "--data", str(fixture_store), "--timerange", "20250101-", "-q"]) == 2
    )
    assert "after the data ends (2024-03-14" in capsys.readouterr().err


def test_pairs_whose_data_ends_within_the_warm_up_are_named(
    fixture_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mtf = str(STRATEGIES / "adaptive_mtf.yaml")  # ranks ATR over 30 days of 5m candles
    assert main(["backtest", mtf, "--data", str(fixture_store), "--pairs", "SOL/USDT", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing can trade: the strategy needs 30 days 3 hours")
    assert "SOL/USDT, could trade from 2024-03-16 19:25" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("strategy", "printed", "explained"),
    [
        ("confluence.yaml", "Per entry tag", "  tags: "),
        ("kinetic_v3.yaml", "isolated margin", "liquidation price "),
    ],
)
def test_tags_and_margin_reach_the_summary_and_explain(
    fixture_store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    strategy: str,
    printed: str,
    explained: str,
) -> None:
    path = str(STRATEGIES / strategy)
    out = tmp_path / "report"
    assert main(["backtest", path, "--data", str(fixture_store), "--report", str(out), "-q"]) == 0
    assert printed in capsys.readouterr().out
    first = json.loads((out / "trades.json").read_text())[0]
    code = main(["explain", path, "--data", str(fixture_store), "--pair", first["pair"],
                 "--at", first["entry_time"]])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0 and f"trade #{first['id']}" in text and explained in text
    if first["tags"]:
        assert "entry tags (a trade entered here" in text
        assert f"  tags: {' '.join(first['tags'])}" in text
    else:
        assert f"{first['liquidation_price']:.6g}" in text
