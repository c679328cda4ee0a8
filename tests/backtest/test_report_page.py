"""report.html of a real backtest (Kinetic Empire on the fixture candles), as a reader meets
it: names and times never broken inside a word, wide tables scrolling in their own box, a
chart per traded pair drawn from its candles with the trades beside them, and a page whose
size grows far slower than the number of trades."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from kinetic_rules.backtest.metrics import compute_metrics
from kinetic_rules.backtest.report_files import write_reports
from kinetic_rules.backtest.report_html import OVERVIEW_BARS
from kinetic_rules.backtest.report_svg import MARKED_TRADES
from kinetic_rules.backtest.report_text import fmt_time
from kinetic_rules.backtest.runner import BacktestRequest, run_backtest
from kinetic_rules.engine.model import BacktestResult
from tests.conftest import STRATEGIES


@pytest.fixture(scope="module")
def real(fixture_store: Path) -> BacktestResult:
    result = run_backtest(BacktestRequest(STRATEGIES / "kinetic_empire.yaml", fixture_store))
    assert len({t.pair for t in result.trades}) >= 2  # a page with several pairs to read
    return result


def _page(result: BacktestResult, folder: Path) -> str:
    paths = write_reports(result, compute_metrics(result), folder)
    return paths["html"].read_text(encoding="utf-8")


def _rules(page: str) -> dict[str, str]:
    """The page's CSS rules outside media queries: selector → declarations."""
    css = page[page.index("<style>") + 7 : page.index("</style>")]
    css = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", css)
    return {sel.strip(): body for sel, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css)}


def test_names_and_times_never_break_inside_a_word(real: BacktestResult, tmp_path: Path) -> None:
    page = _page(real, tmp_path)
    rules = _rules(page)
    assert "white-space:nowrap" in rules["td,th"]  # every table cell: times, prices, pairs
    assert rules[".nw"] == "white-space:nowrap"
    assert "anywhere" not in rules[".kv td"] and "break-word" in rules[".kv td"]
    traded = sorted({t.pair for t in real.trades})
    for pair in real.pairs:  # the header's list breaks between names only
        assert f'<span class="nw">{pair}</span>' in page
    for pair in traded:  # its section's title, and its row of the breakdown
        assert f'<summary><span class="nw">{pair}</span>' in page
        assert f'<td class="k">{pair}</td>' in page
    listed = [t for t in real.trades if f"<td>{fmt_time(t.entry_time)}</td>" in page]
    assert listed  # the trades' times sit in (unbreakable) table cells


def test_wide_tables_scroll_in_their_own_box_and_metrics_fold_on_a_phone(
    real: BacktestResult, tmp_path: Path
) -> None:
    page = _page(real, tmp_path)
    assert "overflow-x:auto" in _rules(page)[".wrap"]
    tables = re.findall(r"(.{0,20})<table(?: class=\"(\w+)\")?>", page)
    for before, cls in tables:
        assert cls == "kv" or before.endswith('<div class="wrap">'), before
    narrow = re.search(r"@media \(max-width:\d+px\)\{((?:[^{}]*\{[^{}]*\})*)\}", page)
    assert narrow and ".metrics{columns:1}" in narrow.group(1)


def test_each_traded_pair_has_a_chart_of_its_candles_and_trades(
    real: BacktestResult, tmp_path: Path
) -> None:
    page = _page(real, tmp_path)
    charts = re.findall(r'<svg viewBox="[^"]+" role="img" aria-label="([^"]+)">(.*?)</svg>', page)
    titles = [title for title, _ in charts]
    traded = sorted({t.pair for t in real.trades})
    assert titles == ["equity", "drawdown", *(f"{pair} candles" for pair in traded)]
    for pair, (_, svg) in zip(traded, charts[2:], strict=True):
        bodies = re.findall(r'stroke-width="[\d.]+" d="([^"]*)"', svg)
        bars = sum(part.count("M") for part in bodies[:2])  # rising and falling bodies
        assert 100 <= bars <= OVERVIEW_BARS + 1
        trades = [t for t in real.trades if t.pair == pair]
        if len(trades) > MARKED_TRADES:
            assert 'class="band"' in svg and '<g class="t"' not in svg
        else:
            assert svg.count('<g class="t"') == len(trades)
    _marks_sit_beside_their_bars(charts[2][1])


def _marks_sit_beside_their_bars(svg: str) -> None:
    """A long's entry triangle points up from under its bar's wick, a short's down from over
    it: no mark covers a price."""
    wicks = re.findall(
        r"M([\d.]+) ([\d.]+)V([\d.]+)",
        " ".join(re.findall(r'<path stroke="#[0-9a-f]+" d="([^"]*)"', svg)),
    )
    spans = [(float(x), float(top), float(low)) for x, top, low in wicks]
    marks = re.findall(r'<path d="M([\d.]+) ([\d.]+)l-5 (-?7)h10z"/>', svg)
    assert marks
    for x, y, d in marks:
        near = min(spans, key=lambda s: abs(s[0] - float(x)))
        if d == "7":  # long: under the low
            assert float(y) > near[2]
        else:
            assert float(y) < near[1]


def test_the_page_grows_far_slower_than_its_trades(real: BacktestResult, tmp_path: Path) -> None:
    """The same run with 10× and 100× its trades (copies with new ids): the page grows by
    a fraction of that, and stays under a fixed size per pair."""
    sizes = []
    for copies in (1, 10, 100):
        trades = [
            replace(t, id=n * len(real.trades) + t.id) for n in range(copies) for t in real.trades
        ]
        page = _page(replace(real, trades=trades), tmp_path / str(copies))
        sizes.append(len(page.encode("utf-8")))
    assert sizes[1] < 3 * sizes[0] and sizes[2] < 1.5 * sizes[1]
    assert sizes[2] < 60_000 + 40_000 * len(real.pairs)


def test_charts_from_the_prices_the_run_held_are_those_read_from_the_store(
    real: BacktestResult, fixture_store: Path, tmp_path: Path
) -> None:
    """The command's backtest keeps each pair's prices for its charts rather than reading
    the candles again; the files are those of a result that reads them from the store."""
    from kinetic_rules.backtest.runner import prepare, simulate

    prepared = prepare(BacktestRequest(STRATEGIES / "kinetic_empire.yaml", fixture_store))
    read = simulate(prepared.plan, prepared.feed, prepared.pairs, extras=prepared.extras)
    read = replace(read, strategy_file=real.strategy_file, strategy_sha256=real.strategy_sha256)
    assert type(read.candles) is not type(real.candles)  # one holds, the other reads
    held = write_reports(real, compute_metrics(real), tmp_path / "held", detail=True)
    again = write_reports(read, compute_metrics(read), tmp_path / "read", detail=True)
    assert held.keys() == again.keys()
    for kind, path in held.items():
        assert path.read_bytes() == again[kind].read_bytes(), kind
