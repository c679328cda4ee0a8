"""Reports of long runs stay small: the summary and the overview are bounded, every trade
is in the trade files, and the per-pair pages written on demand hold the rest."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from kinetic_rules.backtest.metrics import compute_metrics
from kinetic_rules.backtest.report_files import write_reports
from kinetic_rules.backtest.report_html import (
    OVERVIEW_BARS,
    PAIR_PAGES,
    TABLE_ROWS,
    overview_bars,
    pair_page_name,
    render_html,
)
from kinetic_rules.backtest.report_svg import MARKED_TRADES
from kinetic_rules.engine.model import BacktestResult
from tests.backtest.conftest import equity_for, make_result, sol_candles, trades_on

PAIRS = [f"P{n}/USDT" for n in range(10)]
PER_PAIR = 3_000  # 30,000 trades in all
# The bounds docs/backtesting.md states for a run of 30,000 trades over 10 pairs.
RESULTS_BOUND = 256 * 1024
REPORT_BOUND = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def big_result() -> BacktestResult:
    """30,000 real-priced trades: ten pairs, each on the real SOL/USDT 5m candles."""
    candles = sol_candles()
    spots = [(i, i + 3) for i in range(0, 2 * PER_PAIR, 2)]
    trades = []
    for pair in PAIRS:
        for trade in trades_on(candles, pair, spots):
            trades.append(replace(trade, id=len(trades) + 1))
    return make_result(
        trades,
        equity_for(candles, trades, 10_000.0),
        start=candles.index[0],
        end=candles.index[-1],
        pairs=PAIRS,
        timeframe="5m",
        starting_balance=10_000.0,
        candles=dict.fromkeys(PAIRS, candles),
    )


def test_thirty_thousand_trades_give_a_small_summary_and_overview(
    big_result: BacktestResult, tmp_path: Path
) -> None:
    paths = write_reports(big_result, compute_metrics(big_result), tmp_path)
    assert paths["json"].stat().st_size < RESULTS_BOUND
    assert paths["html"].stat().st_size < REPORT_BOUND
    summary = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert summary["trades"]["count"] == 30_000
    # every trade is somewhere: in trades.json with its fills, and in trades.csv
    detail = json.loads(paths["trades"].read_text(encoding="utf-8"))
    assert [t["id"] for t in detail] == list(range(1, 30_001))
    assert all(len(t["fills"]) == 2 for t in detail)
    with paths["csv"].open(encoding="utf-8") as handle:
        assert sum(1 for _ in csv.DictReader(handle)) == 30_000
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count('<tr class="') <= TABLE_ROWS * len(PAIRS) + 100  # highlights, breakdowns
    assert "<circle" not in page  # too many to mark one by one: counted in a band
    assert 'class="band"' in page and "trades.csv and trades.json" in page


def test_detail_pages_list_and_mark_every_trade_of_their_pair(
    big_result: BacktestResult, tmp_path: Path
) -> None:
    small = replace(big_result, trades=[t for t in big_result.trades if t.id % 100 == 0])
    paths = write_reports(small, compute_metrics(small), tmp_path, detail=True)
    page = tmp_path / PAIR_PAGES / pair_page_name("P3/USDT")
    assert paths["pair P3/USDT"] == page
    text = page.read_text(encoding="utf-8")
    mine = [t for t in small.trades if t.pair == "P3/USDT"]
    assert len(mine) <= MARKED_TRADES  # few enough to mark each one
    for trade in mine:
        assert f'<td class="k">{trade.id}</td>' in text
    assert text.count("<circle") == len(mine)
    overview = paths["html"].read_text(encoding="utf-8")
    assert f'href="{PAIR_PAGES}/P3_USDT.html"' in overview


def test_pair_page_names_are_plain_file_names() -> None:
    assert pair_page_name("BTC/USDT") == "BTC_USDT.html"
    assert pair_page_name("BTC/USDT:USDT") == "BTC_USDT_USDT.html"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", pair_page_name("../../etc/passwd"))
    assert not pair_page_name("../x").startswith(".")


def test_many_traded_pairs_share_a_budget_of_chart_bars() -> None:
    """136 traded pairs: each overview chart gets fewer bars, so the page stays about as
    light as at 40 pairs; the full charts are on the detail pages."""
    candles = sol_candles()
    pairs = [f"P{n}/USDT" for n in range(136)]
    trades = []
    for pair in pairs:
        for trade in trades_on(candles, pair, [(100, 400), (5_000, 5_600)]):
            trades.append(replace(trade, id=len(trades) + 1))
    result = make_result(
        trades,
        equity_for(candles, trades[:2], 10_000.0),
        start=candles.index[0],
        end=candles.index[-1],
        pairs=pairs,
        timeframe="5m",
        candles=dict.fromkeys(pairs, candles),
    )
    page = render_html(result, compute_metrics(result))
    charts = re.findall(r'aria-label="P\d+/USDT candles">(.*?)</svg>', page)
    assert len(charts) == 136
    bodies = re.findall(r'stroke-width="[\d.]+" d="([^"]*)"', charts[0])
    drawn = sum(part.count("M") for part in bodies[:2])  # rising and falling bars
    assert drawn <= overview_bars(136) + 1 < OVERVIEW_BARS
    assert overview_bars(40) == OVERVIEW_BARS
    assert len(page.encode("utf-8")) < 1024 * 1024
