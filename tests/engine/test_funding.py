"""Funding, mark prices and exchange rules in backtests, on the fixture store with the
futures extras (funding for BTC and ETH, mark prices for BTC, Binance's market rules)."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.backtest.metrics import compute_metrics
from kinetic_rules.backtest.report_files import results_document, trade_records, trades_csv
from kinetic_rules.backtest.report_html import render_html
from kinetic_rules.backtest.runner import BacktestRequest, prepare, simulate
from kinetic_rules.data.futures_store import FuturesStore
from kinetic_rules.engine.futures import MarketExtras
from kinetic_rules.engine.model import LIQUIDATION, BacktestResult, Trade
from kinetic_rules.market_rules import MarketRules
from tests.conftest import FIXTURES, STRATEGIES

BOTH_SIDES = Path(__file__).parent / "strategies" / "futures_both_sides.yaml"
FUTURES = FIXTURES / "binance-futures"


def run(store: Path, strategy: Path = BOTH_SIDES, **change: Any) -> BacktestResult:
    prepared = prepare(BacktestRequest(strategy, store))
    extras = dataclasses.replace(prepared.extras, **change) if change else prepared.extras
    return simulate(prepared.plan, prepared.feed, prepared.pairs, extras=extras)


def funding_file_rates(base: str) -> pd.Series:
    """The funding rates as the exchange's files hold them, read without our importer."""
    frames = []
    for path in sorted(FUTURES.glob(f"{base}USDT-fundingRate-*")):
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                text = archive.read(archive.namelist()[0])
            frames.append(pd.read_csv(io.BytesIO(text)))
        else:
            frames.append(pd.read_csv(path))
    rows = pd.concat(frames)
    times = pd.to_datetime(rows["calc_time"], unit="ms", utc=True)
    return pd.Series(rows["last_funding_rate"].to_numpy(), index=times)


def expected_funding(trade: Trade, rates: pd.Series, prices: pd.Series) -> float:
    """Reference: at each funding time after the entry and up to the exit, the amount still
    held times the price then, times the rate; longs pay, shorts receive."""
    sign = 1.0 if trade.side == "long" else -1.0
    paid = 0.0
    assert trade.exit_time is not None
    for at, rate in zip(pd.DatetimeIndex(rates.index), rates.to_numpy(), strict=True):
        if trade.entry_time < at <= trade.exit_time:
            held = trade.amount - sum(f.amount for f in trade.fills[1:] if f.time < at)
            paid += sign * float(rate) * held * float(prices[at])
    return paid


def test_funding_is_charged_at_each_funding_time_on_the_position_value(
    futures_store: Path,
) -> None:
    result = run(futures_store)
    mark = FuturesStore(futures_store).load_mark("binance", "BTC/USDT", "15m")
    assert mark is not None
    prices = {"BTC/USDT": mark["open"], "ETH/USDT": result.candles["ETH/USDT"]["open"]}
    rates = {pair: funding_file_rates(pair.split("/")[0]) for pair in prices}
    for trade in result.trades:
        reference = expected_funding(trade, rates[trade.pair], prices[trade.pair])
        assert trade.funding == pytest.approx(reference, rel=1e-9, abs=1e-9)
    longs = [t.funding for t in result.trades if t.side == "long"]
    shorts = [t.funding for t in result.trades if t.side == "short"]
    # the fixture's rates are mostly positive: longs pay, shorts receive
    assert sum(longs) > 0 > sum(shorts)
    assert sum(1 for t in result.trades if t.funding != 0) >= 20


def test_funding_counts_in_profit_and_equity(futures_store: Path) -> None:
    result = run(futures_store)
    trade = next(t for t in result.trades if abs(t.funding) > 1)
    sign = 1.0 if trade.side == "long" else -1.0
    gross = sum(sign * (f.price - trade.entry_price) * f.amount for f in trade.fills[1:])
    assert trade.profit == pytest.approx(gross - trade.fees - trade.funding)
    start = result.assumptions.starting_balance
    assert result.equity.iloc[-1] == pytest.approx(start + sum(t.profit for t in result.trades))
    # equity falls by the funding paid at the close of a candle holding a funding time,
    # while the trade is open (not only at its exit)
    without = run(futures_store, funding=lambda pair: None)
    assert without.trades[0].entry_time == result.trades[0].entry_time
    first = result.trades[0]
    open_span = (result.equity.index > first.entry_time) & (result.equity.index < first.exit_time)
    if first.funding:
        differs = result.equity[open_span] != without.equity[open_span]
        assert differs.any()


def test_without_funding_data_the_report_says_it_was_not_charged(fixture_store: Path) -> None:
    result = run(fixture_store)
    assert all(t.funding == 0 for t in result.trades)
    said = " ".join(result.assumptions.fill_model)
    assert "No funding data for BTC/USDT, ETH/USDT: funding was NOT charged" in said
    assert "No mark-price candles for BTC/USDT, ETH/USDT" in said
    assert "No exchange rules were applied" in said


def test_spot_strategies_pay_no_funding_and_say_nothing_of_it(futures_store: Path) -> None:
    result = run(futures_store, STRATEGIES / "kinetic_empire.yaml")
    assert all(t.funding == 0 for t in result.trades)
    assert not any("unding" in s for s in result.assumptions.fill_model)
    assert compute_metrics(result).funding is None


def test_liquidations_on_real_candles_happen_where_the_mark_price_reached_them(
    futures_store: Path,
) -> None:
    """(Which price liquidates is worked out by hand in test_futures_by_hand.py.)"""
    marked = run(futures_store)
    mark = FuturesStore(futures_store).load_mark("binance", "BTC/USDT", "15m")
    assert mark is not None
    btc = [t for t in marked.trades if t.pair == "BTC/USDT" and t.exit_reason == LIQUIDATION]
    assert btc
    for trade in btc:
        assert trade.exit_time is not None and trade.liquidation_price is not None
        candle = mark.loc[trade.exit_time]
        if trade.side == "long":
            assert candle["low"] <= trade.liquidation_price
        else:
            assert candle["high"] >= trade.liquidation_price
    said = " ".join(marked.assumptions.fill_model)
    assert "Mark-price candles used for liquidations and stops (mark price trigger" in said
    assert "No mark-price candles for ETH/USDT" in said


def test_exchange_rules_round_amounts_and_stops(futures_store: Path) -> None:
    result = run(futures_store)
    rules = FuturesStore(futures_store).read_markets("binance")
    assert rules is not None
    for trade in result.trades:
        r = rules[trade.pair]
        steps = trade.amount / r.amount_step
        assert steps == pytest.approx(round(steps), abs=1e-6)
        for stop in (trade.initial_stop, trade.stop):
            assert stop is not None
            ticks = stop / r.tick_size
            assert ticks == pytest.approx(round(ticks), abs=1e-6)
        for fill in trade.fills[1:-1]:
            steps = fill.amount / r.amount_step
            assert steps == pytest.approx(round(steps), abs=1e-6)
        assert sum(f.amount for f in trade.fills[1:]) == pytest.approx(trade.amount)
    unrounded = run(futures_store, rules=None)
    assert any(t.amount / rules[t.pair].amount_step % 1 > 1e-6 for t in unrounded.trades)
    said = " ".join(result.assumptions.fill_model)
    assert "BTC/USDT: tick 0.01, amount step 1e-05, minimum order value 5" in said
    assert "skipped: 0 entries, 0 take-profits" in said


def test_orders_below_the_minimum_order_value_are_skipped_and_counted(
    futures_store: Path,
) -> None:
    rules = FuturesStore(futures_store).read_markets("binance")
    assert rules is not None
    pricey = dict(rules)
    pricey["ETH/USDT"] = dataclasses.replace(rules["ETH/USDT"], min_notional=1e9)
    result = run(futures_store, rules=pricey)
    assert result.trades and all(t.pair == "BTC/USDT" for t in result.trades)
    said = " ".join(result.assumptions.fill_model)
    skipped = int(said.split("skipped: ")[1].split(" entries")[0])
    assert skipped > 10
    # a take-profit worth less than the minimum is not sent; the trade's exit closes it all
    small = {p: MarketRules(0.01, 0.00001, 2_000.0) for p in rules}
    tiny = run(futures_store, rules=small)
    assert all(sum(f.amount for f in t.fills[1:]) == pytest.approx(t.amount) for t in tiny.trades)
    said = " ".join(tiny.assumptions.fill_model)
    assert int(said.split(" entries, ")[1].split(" take-profits")[0]) > 0


def test_reports_show_funding_per_trade_and_per_pair(futures_store: Path) -> None:
    result = run(futures_store)
    metrics = compute_metrics(result)
    total = sum(t.funding for t in result.trades)
    assert metrics.funding == pytest.approx(total)
    document = results_document(result, metrics)
    assert [t["funding"] for t in trade_records(result)] == pytest.approx(
        [t.funding for t in sorted(result.trades, key=lambda t: t.id)]
    )
    per_pair = {row["pair"]: row["funding"] for row in document["breakdowns"]["funding"]}
    for pair in ("BTC/USDT", "ETH/USDT"):
        paid = sum(t.funding for t in result.trades if t.pair == pair)
        assert per_pair[pair] == pytest.approx(paid)
    assert json.loads(json.dumps(document))["metrics"]["funding"] == pytest.approx(total)
    csv_rows = trades_csv(result).splitlines()
    header = csv_rows[0].split(",")
    column = header.index("funding")
    funded = [float(row.split(",")[column]) for row in csv_rows[1:]]
    assert np.allclose(funded, [t.funding for t in sorted(result.trades, key=lambda t: t.id)])
    html = render_html(result, metrics)
    assert "Funding per pair" in html and "<th>Funding</th>" in html


def test_no_extras_at_all_keeps_the_backtest_as_it_was(fixture_store: Path) -> None:
    prepared = prepare(BacktestRequest(BOTH_SIDES, fixture_store))
    plain = simulate(prepared.plan, prepared.feed, prepared.pairs)
    stored = simulate(prepared.plan, prepared.feed, prepared.pairs, extras=prepared.extras)
    assert prepared.extras.rules is None
    assert [t.to_dict() for t in plain.trades] == [t.to_dict() for t in stored.trades]
    assert MarketExtras().rules_for("BTC/USDT") is None
