"""report.html on real SOL/USDT candles: self-contained, well formed, escaped, small."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.backtest.metrics import compute_metrics
from kinetic_rules.backtest.report_html import render_html
from kinetic_rules.backtest.report_svg import (
    LOSS,
    MAX_BARS,
    WIN,
    candle_chart,
    downsample_ohlc,
    nice_ticks,
)
from kinetic_rules.engine.model import BacktestResult
from tests.backtest.conftest import equity_for, make_result, sol_candles, trades_on

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr"}
SPOTS = [(100, 400), (1000, 1100), (3000, 5000), (7000, 8000)]


class Balance(HTMLParser):
    """Fails on any closing tag that does not close the innermost open one."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.scripts += tag == "script"
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-3:]}"
        self.stack.pop()


def sol_result(name: str = "SOL demo") -> BacktestResult:
    candles = sol_candles()
    trades = trades_on(candles, "SOL/USDT", SPOTS)
    equity = equity_for(candles, trades, 1000.0)
    return make_result(
        trades,
        equity,
        start=candles.index[0],
        end=candles.index[-1],
        pairs=["SOL/USDT", "BTC/USDT"],
        timeframe="5m",
        name=name,
        candles={"SOL/USDT": candles, "BTC/USDT": candles},
    )


@pytest.fixture(scope="module")
def page() -> str:
    result = sol_result()
    return render_html(result, compute_metrics(result))


def test_page_is_well_formed_and_complete(page: str) -> None:
    parser = Balance()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    assert parser.scripts == 0
    assert parser.tags.count("svg") == 3  # equity, drawdown, and SOL only: BTC never traded
    for heading in ("Metrics", "Equity", "Drawdown", "Monthly returns", "Trades by pair"):
        assert f"<h2>{heading}" in page
    assert "0000000000000000000000000000000000000000000000000000000000000001" in page
    assert "roc_threshold=1.5" in page and "0.10%" in page and "next candle&#x27;s open" in page


def test_every_trade_is_marked_with_its_outcome_colour(page: str) -> None:
    result = sol_result()
    marks = re.findall(r'<g class="t" fill="(#[0-9a-f]{6})"', page)
    expected = [WIN if t.is_winner else LOSS for t in result.trades]
    assert marks == expected and WIN in marks and LOSS in marks
    assert page.count("<circle") == len(SPOTS)  # one closing fill each


def test_nothing_is_fetched_from_the_network() -> None:
    result = sol_result('see https://evil.example/x.js "quoted"')
    page = render_html(result, compute_metrics(result))
    outside_text = page.replace("see https://evil.example/x.js &quot;quoted&quot;", "")
    assert "http://" not in outside_text and "https://" not in outside_text
    assert "src=" not in page and "<link" not in page and "@import" not in page


def test_a_malicious_strategy_name_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    result = sol_result(evil)
    result.trades[0].exit_reason = '"><img src=x onerror=alert(2)>'
    result.params["<b>"] = "</td><script>"
    page = render_html(result, compute_metrics(result))
    assert evil not in page and "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parser = Balance()
    parser.feed(page)
    assert parser.stack == [] and parser.scripts == 0


def test_candles_are_aggregated_not_dropped() -> None:
    candles = sol_candles()
    bars = downsample_ohlc(candles)
    k = -(-len(candles) // MAX_BARS)
    assert len(bars) == -(-len(candles) // k) <= MAX_BARS
    first = candles.iloc[:k]
    assert bars.iloc[0].to_dict() == {
        "open": first["open"].iloc[0],
        "high": first["high"].max(),
        "low": first["low"].min(),
        "close": first["close"].iloc[-1],
    }
    assert bars["high"].max() == candles["high"].max()
    assert bars["low"].min() == candles["low"].min()
    assert bars.index[0] == candles.index[0]


def test_a_long_history_makes_a_bounded_chart() -> None:
    """Eight months of 5m candles (72k) chart in about the size of 1,500 bars."""
    base = sol_candles()
    n = 72_000
    tiled = pd.concat([base] * (n // len(base) + 1)).iloc[:n]
    tiled = tiled.set_axis(pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC"))
    trades = trades_on(tiled, "SOL/USDT", [(500, 900), (40_000, 41_000)])
    svg = candle_chart(tiled, trades, lambda t: f"#{t.id}", title="SOL/USDT")
    assert len(svg) < 80_000
    assert svg.count('<g class="t"') == 2


def test_ticks_are_round_numbers() -> None:
    ticks, decimals = nice_ticks(98.3, 181.2)
    assert ticks == [100, 120, 140, 160, 180] and decimals == 0
    ticks, decimals = nice_ticks(-0.0172, 0.0)
    assert np.allclose(ticks, [-0.015, -0.01, -0.005, 0.0]) and decimals == 3
    assert nice_ticks(5.0, 5.0) == ([5.0], 2)


def test_an_empty_backtest_still_renders(empty_result: BacktestResult) -> None:
    page = render_html(empty_result, compute_metrics(empty_result))
    parser = Balance()
    parser.feed(page)
    assert parser.stack == []
    assert "no trades" in page and "nan" not in page.lower()
