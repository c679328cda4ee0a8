"""`kinetic-rules run --replay` as a user runs it, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kinetic_rules.cli.app import main
from tests.conftest import STRATEGIES

KE = str(STRATEGIES / "kinetic_empire.yaml")


def test_replay_reports_the_backtests_trades(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["backtest", KE, "--data", str(fixture_store), "--report", str(tmp_path), "-q"]) == 0
    )
    trades = json.loads((tmp_path / "trades.json").read_text())
    capsys.readouterr()
    assert main(["run", KE, "--replay", str(fixture_store), "--quiet"]) == 0
    out = capsys.readouterr().out
    profit = sum(t["profit"] for t in trades)
    assert f"profit {profit:+.2f};" in out
    assert out.startswith(f"{len(trades)} trades")
    assert out.strip().endswith("0 closed between candle closes (a replay has no position monitor)")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--live", "--replay", "."], "it cannot --replay"),
        (["--replay", "no/such/dir"], "not a directory"),
        (["--replay", ".", "--speed", "fast"], "--speed fast"),
        (["--replay", ".", "--monitor-every", "5s"], "a replay has only its recorded closes"),
        (["--pairs", "BTC/USDT", "--monitor-every", "soon"], "--monitor-every soon"),
    ],
)
def test_run_refuses_clearly(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", KE, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_live_needs_keys_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KINETIC_API_KEY", raising=False)
    monkeypatch.delenv("KINETIC_API_SECRET", raising=False)
    assert main(["run", KE, "--live", "--pairs", "BTC/USDT", "--db", "sqlite://"]) == 2
    err = capsys.readouterr().err
    assert "KINETIC_API_KEY and KINETIC_API_SECRET are not set" in err


def test_live_refuses_what_it_cannot_trade(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    v3 = str(STRATEGIES / "kinetic_v3.yaml")
    command = ["run", v3, "--live", "--pairs", "BTC/USDT", "--db", "sqlite://"]
    assert main([*command, "--exchange", "kraken"]) == 2  # futures: Binance USDⓈ-M only
    assert "live futures trading supports binance" in capsys.readouterr().err
    spot = tmp_path / "spot_shorts.yaml"
    spot.write_text(Path(v3).read_text().replace("type: futures", "type: spot"))
    assert main(["run", str(spot), "--live", "--pairs", "BTC/USDT", "--db", "sqlite://"]) == 2
    assert "spot markets cannot be shorted" in capsys.readouterr().err


def test_live_sends_nothing_without_a_yes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from tests.standin import ExchangeStandin
    from tests.standin.account import API_KEY, API_SECRET

    monkeypatch.setenv("KINETIC_API_KEY", API_KEY)
    monkeypatch.setenv("KINETIC_API_SECRET", API_SECRET)
    monkeypatch.setattr("sys.stdin", io.StringIO("sure\n"))
    with ExchangeStandin.from_fixtures(pairs=("BTC/USDT",), timeframes=("5m",)) as standin:
        standin.clock.set("2024-03-05")
        standin.account.deposit("USDT", 1000)
        command = ["run", KE, "--live", "--pairs", "BTC/USDT", "--db", "sqlite://"]
        assert main([*command, "--exchange-url", standin.url]) == 2
        sent = [r for r in standin.requests() if r.method != "GET"]
    err = capsys.readouterr().err
    assert "LIVE TRADING with real orders on binance" in err
    assert "starting equity 1,000.00 USDT" in err
    assert "live trading was not confirmed; nothing was traded" in err
    assert sent == []


def test_paper_trading_needs_pairs_or_a_scanner(capsys: pytest.CaptureFixture[str]) -> None:
    """Without pairs a scanner picks them from the exchange's markets (tests/live/test_markets.py);
    a strategy with neither cannot start."""
    assert main(["run", str(STRATEGIES / "adaptive_mtf.yaml")]) == 2
    err = capsys.readouterr().err
    assert "trading needs the pairs to trade" in err and "Traceback" not in err
