"""Report files mask each value as it is written, not the finished text: a secret from the
environment planted in any string a report holds (a pair name, an entry tag, an exit reason,
a warning, the strategy's name, a param) reaches no file, and no file name either."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules import secrets
from kinetic_rules.backtest.metrics import compute_metrics
from kinetic_rules.backtest.report_files import write_reports
from kinetic_rules.engine.model import BacktestResult
from kinetic_rules.secrets import register_url
from tests.backtest.conftest import make_result, make_trade, ts

API_SECRET = "Zq8vK2mP4xR7tY1w"  # KINETIC_API_SECRET in the environment
BOT_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # KINETIC_TELEGRAM_TOKEN
DB_PASSWORD = "db-Pa55:w@rd"  # the password of a --db URL, registered as the CLI does
DB_URL = "postgresql://trader:db-Pa55%3Aw%40rd@db.example/kr"
SECRETS = [API_SECRET, BOT_TOKEN, DB_PASSWORD, "db-Pa55%3Aw%40rd"]


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> BacktestResult:
    """A small result with a secret in every kind of string a report writes."""
    monkeypatch.setattr(secrets, "_registered", set())  # this test's registrations end with it
    monkeypatch.setenv("KINETIC_API_SECRET", API_SECRET)
    monkeypatch.setenv("KINETIC_TELEGRAM_TOKEN", BOT_TOKEN)
    register_url(DB_URL)
    pair = f"{API_SECRET}/USDT"
    trades = [
        make_trade(1, "BTC/USDT", ts("2024-01-01"), ts("2024-01-03"), 100.0, 115.0, 2.0),
        make_trade(2, pair, ts("2024-01-03"), ts("2024-01-05"), 50.0, 35.0, 4.0),
        make_trade(3, "BTC/USDT", ts("2024-01-06"), ts("2024-01-11"), 200.0, 134.0, 2.0),
    ]
    equity = pd.Series(1000.0, index=pd.date_range("2024-01-02", periods=10, freq="D", tz="UTC"))
    hand_result = make_result(trades, equity, start=ts("2024-01-01"), end=ts("2024-01-10"))
    trades[0] = replace(trades[0], tags=(f"tag-{API_SECRET}",), regime=f"bull-{BOT_TOKEN}")
    trades[1].exit_reason = f"failed: {DB_URL} with key={API_SECRET}"
    trades[1].fills[-1].reason = trades[1].exit_reason
    assumptions = replace(
        hand_result.assumptions,
        warnings=(f"cannot reach {DB_URL} (token {BOT_TOKEN})",),
        skipped=(f"orderbook: needs {API_SECRET}",),
    )
    return replace(
        hand_result,
        strategy_name=f"KE {API_SECRET}",
        pairs=["BTC/USDT", pair],
        trades=trades,
        tags=[f"tag-{API_SECRET}"],
        regimes=["bull", f"bull-{BOT_TOKEN}"],
        params={**hand_result.params, f"p_{API_SECRET}": f"v-{DB_PASSWORD}"},
        assumptions=assumptions,
        candles={"BTC/USDT": _candles(), pair: _candles()},
    )


def _candles() -> pd.DataFrame:
    index = pd.date_range(ts("2024-01-01"), periods=12, freq="D")
    prices = [100.0 + 5 * i for i in range(12)]
    return pd.DataFrame(
        {"open": prices, "high": [p + 8 for p in prices], "low": [p - 60 for p in prices]}
        | {"close": prices, "volume": 1.0},
        index=index,
    )


def test_no_planted_secret_reaches_any_report_file(planted: BacktestResult, tmp_path: Path) -> None:
    written = write_reports(planted, compute_metrics(planted), tmp_path, detail=True)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert set(written.values()) == set(files)
    assert len(files) == 4 + 2  # results, trades json and csv, the page, two pair pages
    for path in files:
        text = path.read_text(encoding="utf-8")
        for secret in SECRETS:
            assert secret not in path.name, f"{secret!r} in the name {path.name}"
            assert secret not in text, f"{secret!r} in {path.name}"
    # what is around a secret is still there: the values were masked, not dropped
    results = written["json"].read_text(encoding="utf-8")
    assert '"name": "KE ***"' in results and '"***/USDT"' in results
    assert "postgresql://trader:***@db.example/kr" in written["trades"].read_text()
    assert "tag-***" in written["csv"].read_text() and "tag-***" in written["html"].read_text()
