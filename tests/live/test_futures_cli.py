"""`run --live` accepts the shipped futures strategies and trades them on the stand-in.

The real command runs in its own process (tests/live/bot_process.py) in the stand-in's
time, with keys from the environment, through ccxt's `binanceusdm` client.
"""

from __future__ import annotations

import os
import re
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
    env["PYTHONUNBUFFERED"] = "1"  # the log keeps what was said before a kill
    command = [
        sys.executable, "-m", "tests.live.bot_process", standin.url, "run", *args,
        "--exchange-url", standin.url, "--db", f"sqlite:///{tmp_path / 'live.sqlite'}",
        "--data", str(tmp_path / "candles"), "--pairs", *PAIRS,
    ]  # fmt: skip
    with open(tmp_path / "bot.log", "ab") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


# Windows of the recorded candles where each file enters and exits (found by backtesting
# them on the same candles). adaptive_mtf ranks volatility over 30 days of ATRs, more than
# the recorded month holds before its trades: `--set atr_days=7` lets it trade inside it.
WINDOWS = {
    "kinetic_v3.yaml": ("2024-03-05 14:00:10", 10, []),
    "adaptive_mtf.yaml": ("2024-03-10 14:55:10", 11, ["--set", "atr_days=7"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["kinetic_v3.yaml", "adaptive_mtf.yaml"])
def test_the_shipped_futures_strategies_trade_on_the_exchange_under_run_live(
    standin: ExchangeStandin, tmp_path: Path, strategy: str
) -> None:
    from kinetic_rules.persist import TradeStore

    begin, hours, sets = WINDOWS[strategy]
    start = pd.Timestamp(begin, tz="UTC")
    standin.clock.set(start)
    file = str(ROOT / "strategies" / strategy)
    until = int((start + pd.Timedelta(hours=hours)).timestamp() * 1000)
    bot = launch(standin, tmp_path, file, "--live", "--yes", *sets)
    kill_when(bot, lambda: standin.clock.now() >= until, tmp_path)
    log = (tmp_path / "bot.log").read_text(errors="replace")  # all of it: _log keeps the end
    assert "Traceback" not in log and "LIVE TRADING with real orders on binanceusdm" in log
    assert standin.requests("/fapi/v1/positionSide/dual")  # hedge mode was checked first
    assert standin.requests("/fapi/v1/klines")  # its candles are the futures market's
    assert not standin.requests("/api/v3/klines")
    with TradeStore(f"sqlite:///{tmp_path / 'live.sqlite'}") as store:
        trades = store.trades(mode="live")
    closed = [t for t in trades if t.exit_time is not None]
    assert closed, (
        [(t.pair, t.side, t.entry_time) for t in trades],
        [(o.client_id, o.type, o.status, o.price, o.executed) for o in standin.futures.orders],
    )
    account = standin.futures
    ours = [o for o in account.orders if o.client_id.startswith("kr")]
    opened = [o for o in ours if not o.reduce_only and o.executed > 0]
    closing = [o for o in account.orders if o.reduce_only and o.executed > 0]
    assert len(opened) == len(trades) and closing  # entries filled, exits filled
    # every order of ours that is not an entry is reduce-only: exits, take-profits, stops
    kinds = {o.client_id: re.search(r"-\d+([a-z])\d+$", o.client_id) for o in ours}
    assert all(o.reduce_only for o in ours if (m := kinds[o.client_id]) and m.group(1) != "e")
    assert all(kinds.values())
    stops = [o for o in ours if o.type == "STOP_MARKET"]
    assert stops and all(o.working_type == "MARK_PRICE" and o.reduce_only for o in stops)
    set_to = {  # the leverage set on a symbol before each of its entries
        (r.params["symbol"], int(r.params["leverage"]))
        for r in standin.requests("/fapi/v1/leverage")
        if r.method == "POST"
    }
    assert {(t.pair.replace("/", ""), int(t.leverage)) for t in trades} <= set_to
    if strategy == "kinetic_v3.yaml":
        assert {t.leverage for t in trades} <= {2.0, 5.0, 7.0, 10.0, 15.0, 20.0}
        assert any(t.leverage > 1 for t in trades)


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
        assert "Traceback" not in _log(tmp_path, tail=None)
        with TradeStore(url) as store:
            trades = store.trades(mode="paper")
        assert {"long", "short"} <= {t.side for t in trades}
        assert all(t.margin == pytest.approx(t.stake) for t in trades)
        assert not standin.requests("/fapi/v1/order") and not standin.requests("/api/v3/order")


def test_book_fills_on_a_futures_strategy_trade_a_simulated_margin_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --fills book` on a futures strategy attaches the executor to a simulated margin
    account on the futures market (tests/live/test_paper_futures_session.py trades it)."""
    from kinetic_rules.cli.app import main
    from kinetic_rules.live.paper_futures import PaperFuturesBroker
    from kinetic_rules.live.session import TradingSession

    seen: list[object] = []

    def look_and_stop(self: TradingSession, cycles: int | None = None) -> None:
        assert self.runtime is not None and self.runtime.executor is not None
        seen.append(self.runtime.executor.broker)
        raise KeyboardInterrupt

    monkeypatch.setattr(TradingSession, "run", look_and_stop)
    with ExchangeStandin.from_fixtures(pairs=("BTC/USDT",), timeframes=("5m",)) as standin:
        standin.clock.set(pd.Timestamp("2024-03-05 00:00:10", tz="UTC"))
        code = main(
            [
                "run", str(Path(__file__).parent / "strategies" / "busy.yaml"),
                "--fills", "book", "--pairs", "BTC/USDT", "--exchange-url", standin.url,
                "--data", str(tmp_path / "store"), "--db", f"sqlite:///{tmp_path / 't.sqlite'}",
            ]
        )  # fmt: skip
    assert code == 130, capsys.readouterr().err
    (broker,) = seen
    assert isinstance(broker, PaperFuturesBroker)
    assert broker.settings.margin_mode == "isolated" and broker.settings.stop_trigger == "mark"
    assert broker.account.wallet == 10_000.0  # the file's starting balance
