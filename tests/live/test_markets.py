"""Live scanning: the exchange's markets listed, filtered and ranked through the real ccxt
client against the stand-in, and paper sessions that follow the listing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import pandas as pd
import pytest

from kinetic_rules.cli.app import main
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.data.exchange import RetryPolicy
from kinetic_rules.data.store import CandleStore
from kinetic_rules.errors import ExchangeError
from kinetic_rules.lang.checker import check
from kinetic_rules.live.markets import (
    LiveUniverse,
    eligible,
    leveraged,
    rank,
    scan_markets,
    universe_size,
)
from kinetic_rules.live.session import TradingSession
from kinetic_rules.spec.loader import load_file
from kinetic_rules.spec.models import Market, Scanner
from tests.conftest import STRATEGIES
from tests.live.test_replay import fingerprint
from tests.standin import ExchangeStandin

SCANNING = Path(__file__).parent / "strategies" / "scanning.yaml"
KE = load_file(STRATEGIES / "kinetic_empire.yaml").strategy
START = pd.Timestamp("2024-03-05 00:00:10", tz="UTC")
TRADED = ("BTC/USDT", "ETH/USDT", "SOL/USDT")  # real 5m candles from the fixtures
# What else a Binance listing holds, with 24-hour quote volumes of the right size
OTHERS: list[tuple[str, str, float, float, str]] = [
    ("USDC", "USDT", 1.0001, 8.1e9, "TRADING"),  # a stablecoin: the busiest of all
    ("FDUSD", "USDT", 0.9998, 6.4e9, "TRADING"),
    ("EUR", "USDT", 1.08, 9.0e7, "TRADING"),  # fiat money
    ("BTCUP", "USDT", 41.2, 2.2e7, "TRADING"),  # leveraged tokens
    ("ETHDOWN", "USDT", 0.61, 1.9e7, "TRADING"),
    ("JUP", "USDT", 1.12, 9.4e7, "TRADING"),  # a coin, though its name ends in UP
    ("BNB", "USDT", 412.0, 6.1e8, "TRADING"),  # blacklisted by Kinetic Empire
    ("DOGE", "USDT", 0.15, 1.2e9, "TRADING"),
    ("PEPE", "USDT", 0.0000071, 9.0e8, "TRADING"),
    ("LUNA", "USDT", 0.92, 5.0e8, "BREAK"),  # not trading
    ("ETH", "BTC", 0.055, 3.1e8, "TRADING"),  # quoted in another currency
    ("XRP", "USDC", 0.62, 2.0e8, "TRADING"),
    ("QUIET", "USDT", 0.5, 0.0, "TRADING"),  # nothing traded in 24 hours
]


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=TRADED, timeframes=("5m",)) as exchange:
        exchange.clock.set(START)
        for base, quote, last, volume, status in OTHERS:
            exchange.market.list_symbol(base, quote, last=last, quote_volume=volume, status=status)
        yield exchange


def busiest(standin: ExchangeStandin, **volumes: float) -> None:
    for symbol, volume in volumes.items():
        standin.market.set_quote_volume(symbol, volume)


def test_a_live_scan_keeps_the_tradable_markets_quoted_in_the_stake(
    standin: ExchangeStandin,
) -> None:
    busiest(standin, BTCUSDT=3.1e9, ETHUSDT=1.8e9, SOLUSDT=2.2e9)
    client = standin.ccxt_client()
    # JUP/USDT is a coin, but Kinetic Empire's blacklist holds ".*UP/.*"
    assert scan_markets(client, KE.market, KE.scanner) == [
        "BTC/USDT",
        "DOGE/USDT",
        "ETH/USDT",
        "PEPE/USDT",
        "SOL/USDT",
    ]  # fmt: skip
    assert len(standin.requests("/api/v3/ticker/24hr")) == 1  # every ticker in one call
    tickers = client.fetch_tickers()
    ranked = rank(["BTC/USDT", "ETH/USDT", "SOL/USDT", "QUIET/USDT"], tickers)
    assert [item.pair for item in ranked] == ["BTC/USDT", "SOL/USDT", "ETH/USDT"]


def test_the_universe_is_the_busiest_few_the_scanners_top_steps_need(
    standin: ExchangeStandin,
) -> None:
    assert universe_size(KE.scanner) == 105  # top 70 × 1.5
    assert universe_size(None) == 100 and universe_size(scanner(top=500)) == 200
    busiest(standin, BTCUSDT=3.1e9, ETHUSDT=1.8e9, SOLUSDT=2.2e9)
    two = scan_markets(standin.ccxt_client(), Market(), scanner(top=1))  # 1 × 1.5 → 2
    assert two == ["BTC/USDT", "SOL/USDT"]  # USDC and FDUSD are busier, but stablecoins
    busiest(standin, DOGEUSDT=2.2e9)  # a tie with SOL for the second place: names decide
    assert scan_markets(standin.ccxt_client(), Market(), scanner(top=1)) == [
        "BTC/USDT", "DOGE/USDT",
    ]  # fmt: skip


def scanner(top: int, refresh: str = "1h") -> Scanner:
    return Scanner.model_validate({"refresh": refresh, "steps": [{"top": top, "by": "volume"}]})


def test_futures_scans_linear_perpetuals_settled_in_the_stake() -> None:
    parse = ccxt.binance().parse_market  # the real client shapes the markets
    markets = {
        m["symbol"]: m
        for m in (
            parse(_futures("BTCUSDT", "BTC", "USDT")),
            parse(_futures("ETHUSDT", "ETH", "USDT")),
            parse(_futures("BTCUSDT_250328", "BTC", "USDT", "CURRENT_QUARTER", 1743148800000)),
            parse(_futures("USDCUSDT", "USDC", "USDT")),
            parse(_futures("ETHBTC", "ETH", "BTC")),
            parse(_futures("LUNAUSDT", "LUNA", "USDT", status="SETTLING")),
        )
    }
    assert "BTC/USDT:USDT-250328" in markets
    futures = Market(type="futures")
    assert eligible(markets, market=futures) == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert eligible(markets, market=futures, blacklist=["ETH/.*"]) == ["BTC/USDT:USDT"]
    assert eligible(markets, market=Market()) == []  # no spot markets among them


def _futures(
    symbol: str,
    base: str,
    quote: str,
    contract: str = "PERPETUAL",
    delivery: int = 4133404800000,
    status: str = "TRADING",
) -> dict[str, Any]:
    """A USDⓈ-M futures market as the exchange's /fapi/v1/exchangeInfo describes it."""
    return {
        "symbol": symbol, "pair": symbol.split("_")[0], "contractType": contract,
        "deliveryDate": delivery, "onboardDate": 1569398400000, "status": status,
        "baseAsset": base, "quoteAsset": quote, "marginAsset": quote, "pricePrecision": 2,
        "quantityPrecision": 3, "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "filters": [], "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC"],
    }  # fmt: skip


def test_leveraged_tokens_are_known_by_their_underlying_coin() -> None:
    coins = {"BTC", "ETH", "JUP", "BTCUP", "ETHDOWN", "ETH3L", "XRPBULL", "XRP", "SUPER"}
    assert [c for c in sorted(coins) if leveraged(c, coins)] == [
        "BTCUP", "ETH3L", "ETHDOWN", "XRPBULL",
    ]  # fmt: skip


def test_an_exchange_that_does_not_answer_is_a_temporary_error(standin: ExchangeStandin) -> None:
    waits: list[float] = []
    standin.faults.fail_next(10, path="/api/v3/ticker/24hr")
    with pytest.raises(ExchangeError, match="fetch tickers: gave up after 3 attempts") as error:
        scan_markets(
            standin.ccxt_client(), KE.market, KE.scanner,
            retry=RetryPolicy(attempts=3, sleep=waits.append),
        )  # fmt: skip
    assert error.value.temporary and waits == [1.0, 2.0]


# -- paper sessions that scan ---------------------------------------------------------------

SWITCH = START + pd.Timedelta(hours=1, minutes=20)  # SOL becomes busier than ETH
CYCLES = 80


def scanning_session(standin: ExchangeStandin, root: Path, url: str) -> TradingSession:
    """A session as `kinetic-rules run` starts one without pairs: the markets listed first."""
    from kinetic_rules.persist import TradeStore
    from kinetic_rules.persist.sink import StoreSink

    plan = build_plan(check(load_file(SCANNING)))
    spec = plan.strategy.spec
    assert spec.scanner is not None
    client = standin.ccxt_client()
    now = pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")
    universe = LiveUniverse(client, spec.market, spec.scanner)
    trades = TradeStore(url)

    def sleep(seconds: float) -> None:
        standin.clock.advance(int(seconds * 1000))
        if pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC") >= SWITCH:
            busiest(standin, ETHUSDT=1.1e9, SOLUSDT=2.5e9)

    return TradingSession(
        plan, client, CandleStore(root), universe.refresh(now),
        clock=lambda: pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC"), sleep=sleep,
        sizes={"5m": 600}, sink=StoreSink(trades, strategy="scanning", mode="paper"),
        journal=trades, universe=universe,
    )  # fmt: skip


def stored(url: str) -> list[tuple[object, ...]]:
    from kinetic_rules.persist import TradeStore

    with TradeStore(url) as store:
        return sorted((fingerprint(t) for t in store.trades(mode="paper")), key=repr)


def test_a_scanning_session_follows_the_busiest_markets(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    busiest(standin, BTCUSDT=3.1e9, ETHUSDT=1.8e9, SOLUSDT=1.2e9)  # 1 × 1.5 → the top 2
    session = scanning_session(standin, tmp_path / "store", f"sqlite:///{tmp_path / 't.sqlite'}")
    assert session.pairs == ["BTC/USDT", "ETH/USDT"]
    session.start()
    session.run(cycles=CYCLES)
    assert session.runtime is not None
    trades = session.runtime.trades()
    assert session.pairs[:1] == ["BTC/USDT"] and "SOL/USDT" in session.pairs
    assert session.runtime.source.pairs() == session.pairs
    listed = SWITCH.ceil("1h")  # listed again at the first refresh after the change,
    first = listed - pd.Timedelta(minutes=5)  # so traded from the candle that closes then
    sol = [t for t in trades if t.pair == "SOL/USDT"]
    assert sol and all(t.signal_time >= first for t in sol)
    assert {t.pair for t in trades if t.signal_time < first} <= {"BTC/USDT", "ETH/USDT"}


@pytest.mark.slow
def test_a_scanning_session_resumes_with_the_pairs_it_had(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    busiest(standin, BTCUSDT=3.1e9, ETHUSDT=1.8e9, SOLUSDT=1.2e9)
    whole = f"sqlite:///{tmp_path / 'whole.sqlite'}"
    session = scanning_session(standin, tmp_path / "whole", whole)
    session.start()
    session.run(cycles=CYCLES)
    end = standin.clock.now()

    standin.clock.set(START)
    busiest(standin, ETHUSDT=1.8e9, SOLUSDT=1.2e9)
    broken = f"sqlite:///{tmp_path / 'broken.sqlite'}"
    first = scanning_session(standin, tmp_path / "broken", broken)
    first.start()
    first.run(cycles=45)  # past the switch to SOL
    assert "SOL/USDT" in first.pairs
    del first  # the process dies
    second = scanning_session(standin, tmp_path / "broken", broken)
    second.start()  # replays every close since it began, the switch included
    assert "SOL/USDT" in second.pairs
    while standin.clock.now() < end:
        second.run(cycles=1)
    assert stored(broken) == stored(whole)
    assert any(t[0] == "SOL/USDT" for t in stored(whole))


def test_run_without_pairs_scans_the_exchanges_markets(
    standin: ExchangeStandin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    busiest(standin, BTCUSDT=3.1e9, ETHUSDT=1.8e9, SOLUSDT=2.2e9)

    def stop_at_once(self: TradingSession, cycles: int | None = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(TradingSession, "run", stop_at_once)
    caplog.set_level("INFO", logger="kinetic_rules.live")
    code = main(
        [
            "run", str(SCANNING), "--exchange-url", standin.url, "--data",
            str(tmp_path / "store"), "--db", f"sqlite:///{tmp_path / 'trades.sqlite'}",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 130, err
    assert "paper trading BTC/USDT, SOL/USDT on binance" in err
    assert "scanning 2 of 7 spot markets quoted in USDT on binance" in caplog.text


def test_a_market_without_candles_yet_waits_for_a_later_refresh(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    standin.market.list_symbol("NEW", "USDT", last=0.8, quote_volume=9.9e9)  # listed today
    busiest(standin, BTCUSDT=3.1e9, ETHUSDT=1.8e9, SOLUSDT=1.2e9)
    session = scanning_session(standin, tmp_path / "store", f"sqlite:///{tmp_path / 't.sqlite'}")
    assert session.pairs == ["BTC/USDT", "NEW/USDT"]  # the listing: the busiest two
    session.start()
    session.run(cycles=2)
    assert session.pairs == ["BTC/USDT"]
    assert session.runtime is not None and session.runtime.source.pairs() == ["BTC/USDT"]


def test_run_fills_book_trades_through_the_executor_and_the_paper_broker(
    standin: ExchangeStandin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kinetic_rules.live.paper_broker import PaperBroker

    seen: list[object] = []

    def look_and_stop(self: TradingSession, cycles: int | None = None) -> None:
        assert self.runtime is not None and self.runtime.executor is not None
        seen.append(self.runtime.executor.broker)
        raise KeyboardInterrupt

    monkeypatch.setattr(TradingSession, "run", look_and_stop)
    code = main(
        [
            "run", str(SCANNING), "--fills", "book", "--pairs", "BTC/USDT",
            "--exchange-url", standin.url, "--data", str(tmp_path / "store"),
            "--db", f"sqlite:///{tmp_path / 'trades.sqlite'}",
        ]
    )  # fmt: skip
    assert code == 130, capsys.readouterr().err
    assert len(seen) == 1 and isinstance(seen[0], PaperBroker)
