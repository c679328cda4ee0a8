"""Properties that must hold for any result: bounded figures, no NaN, repeatable output."""

from __future__ import annotations

import json
import math

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.backtest.metrics import (
    breakdowns,
    by_exit_reason,
    by_pair,
    by_regime,
    compute_metrics,
    summarize,
)
from kinetic_rules.backtest.report_files import (
    plain,
    results_json,
    trade_records,
    trades_csv,
    trades_json,
)
from kinetic_rules.backtest.report_html import render_html
from kinetic_rules.engine.model import BacktestResult, Trade
from tests.backtest.conftest import make_result, make_trade, ts

START = ts("2024-01-30")
prices = st.floats(0.01, 1000.0, allow_nan=False)
trade_specs = st.tuples(
    st.integers(0, 200),  # entry, hours after the start
    st.one_of(st.none(), st.integers(0, 100)),  # hours held; None: still open
    prices,
    prices,
    st.floats(0.001, 10.0),
    st.sampled_from(["long", "short"]),
    st.floats(0.0, 1.0),
    st.sampled_from(["bull", "bear", None]),
)


@st.composite
def results(draw: st.DrawFn) -> BacktestResult:
    values = draw(
        st.lists(st.floats(-100.0, 1e6, allow_nan=False, allow_infinity=False), max_size=80)
    )
    hours = draw(st.sampled_from([1, 6, 24]))
    index = pd.date_range(START + pd.Timedelta(hours=hours), periods=len(values), freq=f"{hours}h")
    trades: list[Trade] = []
    for n, (at, held, entry, exit, amount, side, fee, regime) in enumerate(
        draw(st.lists(trade_specs, max_size=8))
    ):
        entry_time = START + pd.Timedelta(hours=at)
        exit_time = None if held is None else entry_time + pd.Timedelta(hours=held)
        trades.append(
            make_trade(
                n + 1,
                "BTC/USDT" if n % 2 else "ETH/USDT",
                entry_time,
                exit_time,
                entry,
                None if held is None else exit,
                amount,
                side=side,
                fee=fee,
                regime=regime,
            )
        )
    end = index[-1] if len(index) else START
    return make_result(
        trades, pd.Series(values, index=index, dtype="float64"), start=START, end=end
    )


def _finite_everywhere(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite_everywhere(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite_everywhere(v) for v in value)
    return True


@settings(max_examples=150, deadline=None)
@given(results())
def test_figures_stay_in_their_ranges(result: BacktestResult) -> None:
    m = compute_metrics(result)
    assert -1.0 <= m.max_drawdown <= 0.0
    assert 0.0 <= m.exposure <= 1.0
    assert m.win_rate is None or 0.0 <= m.win_rate <= 1.0
    assert m.profit_factor is None or m.profit_factor >= 0.0
    assert m.gross_profit >= 0.0 and m.gross_loss >= 0.0 and m.max_drawdown_abs >= 0.0
    assert m.wins + m.draws + m.losses == m.trades
    assert m.max_drawdown_duration is None or m.max_drawdown_duration <= m.span
    assert _finite_everywhere(m.to_dict())
    json.dumps(m.to_dict(), allow_nan=False)
    for rows in (by_pair(result), by_exit_reason(result), by_regime(result)):
        assert sum(r.trades for r in rows) == m.trades
        assert all(r.win_rate is None or 0 <= r.win_rate <= 1 for r in rows)


def _refuse(token: str) -> object:
    raise AssertionError(f"{token} in results.json")


@settings(max_examples=40, deadline=None)
@given(results())
def test_rendering_twice_gives_identical_text(result: BacktestResult) -> None:
    m = compute_metrics(result)
    document = results_json(result, m)
    json.loads(document, parse_constant=_refuse)  # strict JSON: no NaN or Infinity
    assert document == results_json(result, compute_metrics(result))
    assert trades_csv(result) == trades_csv(result)
    assert render_html(result, m) == render_html(result, compute_metrics(result))


UNITS = st.sampled_from(["s", "ms", "us", "ns"])


@st.composite
def held_trades(draw: st.DrawFn) -> BacktestResult:
    """Closed trades whose times come in any unit pandas keeps, held up to ~30 years."""
    trades = []
    for n in range(draw(st.integers(1, 6))):
        entry = (START + pd.Timedelta(draw(st.integers(0, 10**15)), "ns")).as_unit("ns")
        held = pd.Timedelta(draw(st.integers(0, 10**18)), "ns")
        entry = entry.floor("s").as_unit(draw(UNITS))
        exit = (entry + held).floor("s").as_unit(draw(UNITS))
        trades.append(make_trade(n + 1, "BTC/USDT", entry, exit, 100.0, 101.0, 1.0))
    return make_result(trades, pd.Series(dtype="float64"), start=START, end=START)


@settings(max_examples=150, deadline=None)
@given(held_trades())
def test_holding_times_are_those_of_timedelta_arithmetic(result: BacktestResult) -> None:
    """Metrics and trade files work on the times' nanoseconds: the figures are those the
    trades' Timedeltas give, whatever unit their times come in."""
    durations = [t.duration for t in result.trades]
    assert all(d is not None for d in durations)
    mean = (sum(durations, pd.Timedelta(0)) / len(durations)).to_pytimedelta()
    assert compute_metrics(result).avg_holding == mean
    assert [row.avg_holding for row in by_pair(result) if row.trades] == [mean]
    minutes = [plain(d.total_seconds() / 60) for d in durations if d is not None]
    assert [r["duration_minutes"] for r in trade_records(result)] == minutes


@settings(max_examples=40, deadline=None)
@given(results())
def test_each_line_of_trades_json_is_its_record_with_sorted_keys(result: BacktestResult) -> None:
    lines = trades_json(result).splitlines()[1:-1]
    records = trade_records(result)
    assert len(lines) == len(records)
    for line, record in zip(lines, records, strict=True):
        written = json.dumps(record, sort_keys=True, ensure_ascii=False, allow_nan=False)
        assert line.removesuffix(",") == written


pooled = st.sampled_from([0.0, -0.0, 1.5, -1.5, 0.1 + 0.2, 2 / 3, 1e-300])  # values that repeat


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(pooled, pooled, pooled), min_size=1, max_size=6))
def test_trade_records_round_repeated_numbers_as_plain_does(
    numbers: list[tuple[float, float, float]],
) -> None:
    """In a batch of trades, a zero's sign and every repeated number come out as `plain`
    writes each value alone (a cache of rounded numbers keyed by value would merge
    0.0 and -0.0)."""
    trades = []
    for n, (funding, fee, stop) in enumerate(numbers):
        trade = make_trade(n + 1, "BTC/USDT", START, START + pd.Timedelta(hours=1), 2.0, 3.0, 1.0)
        trade.funding, trade.fills[0].fee, trade.stop = funding, fee, stop
        trades.append(trade)
    result = make_result(trades, pd.Series(dtype="float64"), start=START, end=START)
    for record, trade in zip(trade_records(result), trades, strict=True):
        assert repr(record["funding"]) == repr(plain(trade.funding))
        assert repr(record["fills"][0]["fee"]) == repr(plain(trade.fills[0].fee))
        assert repr(record["final_stop"]) == repr(plain(trade.stop))
        assert repr(record["profit"]) == repr(plain(trade.profit))


@settings(max_examples=40, deadline=None)
@given(results())
def test_summarize_is_the_metrics_and_the_breakdowns(result: BacktestResult) -> None:
    """The backtest command's one pass over the trades gives what the two functions give."""
    metrics, tables = summarize(result)
    assert metrics.to_dict() == compute_metrics(result).to_dict()
    assert tables == breakdowns(result)
