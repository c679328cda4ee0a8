"""`run --live` accepts the shipped futures strategies and trades them on the stand-in.

The real command runs in its own process (tests/live/bot_process.py) in the stand-in's
time, with keys from the environment, through ccxt's `binanceusdm` client.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.live.test_sigkill import _log, kill_when
from tests.standin import ExchangeStandin
from tests.standin.account import API_KEY, API_SECRET

ROOT = Path(__file__).resolve().parents[2]
PAIRS = ("BTC/USDT", "ETH/USDT")


@pytest.fixture
def standin(request: pytest.FixtureRequest) -> Iterator[ExchangeStandin]:
    """Recorded candles of the timeframes a strategy reads (4h and 15m made from 1h and 5m)."""
    five = "adaptive" in request.node.name  # adaptive_mtf decides on 5m candles
    timeframes = ("5m", "1h", "1d") if five else ("15m", "1h", "1d")
    with ExchangeStandin.from_fixtures(pairs=PAIRS, timeframes=timeframes) as exchange:
        for pair in PAIRS:
            exchange.market.resample(*pair.split("/"), "1h", "4h")
            if five:
                exchange.market.resample(*pair.split("/"), "5m", "15m")
        exchange.futures.deposit(10_000)
        yield exchange


def launch(standin: ExchangeStandin, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KINETIC_API_KEY": API_KEY, "KINETIC_API_SECRET": API_SECRET}
    env.pop("KINETIC_TELEGRAM_TOKEN", None)
    command = [
        sys.executable, "-m", "tests.live.bot_process", standin.url, "run", *args,
        "--exchange-url", standin.url, "--db", f"sqlite:///{tmp_path / 'live.sqlite'}",
        "--data", str(tmp_path / "candles"), "--pairs", *PAIRS,
    ]  # fmt: skip
    with open(tmp_path / "bot.log", "ab") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


@pytest.mark.parametrize("strategy", ["kinetic_v3.yaml", "adaptive_mtf.yaml"])
def test_run_live_accepts_the_shipped_futures_strategies(
    standin: ExchangeStandin, tmp_path: Path, strategy: str
) -> None:
    start = pd.Timestamp("2024-03-10 00:00:10", tz="UTC")
    standin.clock.set(start)
    file = str(ROOT / "strategies" / strategy)
    until = int((start + pd.Timedelta(hours=3)).timestamp() * 1000)
    bot = launch(standin, tmp_path, file, "--live", "--yes")
    kill_when(bot, lambda: standin.clock.now() >= until, tmp_path)
    log = _log(tmp_path)
    assert "Traceback" not in log and "LIVE TRADING with real orders on binanceusdm" in log
    assert standin.requests("/fapi/v1/positionSide/dual")  # hedge mode was checked first
    assert standin.requests("/fapi/v1/klines")  # its candles are the futures market's
    assert not standin.requests("/api/v3/klines")


def test_hedge_mode_stops_the_bot_before_it_trades(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    standin.futures.dual_side = True
    file = str(ROOT / "strategies" / "kinetic_v3.yaml")
    bot = launch(standin, tmp_path, file, "--live", "--yes")
    assert bot.wait(timeout=120) == 2
    log = _log(tmp_path)
    assert "hedge mode" in log and "Traceback" not in log
    assert not [r for r in standin.requests("/fapi/v1/order") if r.method == "POST"]


def test_paper_trading_a_futures_strategy_trades_shorts_with_simulated_margin(
    tmp_path: Path,
) -> None:
    """`run` without --live on a futures strategy: the candle fill model simulates margin,
    leverage, liquidation and shorts as the backtest does; the account is never touched."""
    from kinetic_rules.persist import TradeStore

    pairs = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    busy = Path(__file__).parent / "strategies" / "busy.yaml"
    with ExchangeStandin.from_fixtures(pairs=pairs, timeframes=("5m",)) as standin:
        start = pd.Timestamp("2024-03-05 03:20:10", tz="UTC")
        standin.clock.set(start)
        url = f"sqlite:///{tmp_path / 'paper.sqlite'}"
        command = [
            sys.executable, "-m", "tests.live.bot_process", standin.url, "run", str(busy),
            "--exchange-url", standin.url, "--db", url, "--data", str(tmp_path / "candles"),
            "--pairs", *pairs,
        ]  # fmt: skip
        with open(tmp_path / "bot.log", "ab") as log:
            bot = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
        until = int((start + pd.Timedelta(hours=10)).timestamp() * 1000)
        kill_when(bot, lambda: standin.clock.now() >= until, tmp_path)
        assert "Traceback" not in _log(tmp_path)
        with TradeStore(url) as store:
            trades = store.trades(mode="paper")
        assert {"long", "short"} <= {t.side for t in trades}
        assert all(t.margin == pytest.approx(t.stake) for t in trades)
        assert not standin.requests("/fapi/v1/order") and not standin.requests("/api/v3/order")


def test_book_fills_on_a_futures_strategy_are_refused_with_what_to_do_instead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kinetic_rules.cli.app import main

    with ExchangeStandin.from_fixtures(pairs=("BTC/USDT",), timeframes=("5m",)) as standin:
        code = main(
            [
                "run", str(Path(__file__).parent / "strategies" / "busy.yaml"),
                "--fills", "book", "--pairs", "BTC/USDT", "--exchange-url", standin.url,
                "--data", str(tmp_path / "store"), "--db", f"sqlite:///{tmp_path / 't.sqlite'}",
            ]
        )  # fmt: skip
    assert code == 2
    assert "--fills candles" in capsys.readouterr().err
