"""Plans: shared series, warm-ups and data needs, derived from the file alone."""

from __future__ import annotations

from kinetic_rules.compile.plan import DataNeed, build_plan
from kinetic_rules.errors import StrategyError
from kinetic_rules.lang import ast
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_file, load_text
from tests.conftest import STRATEGIES

HEADER = "metadata: {name: t}\ntimeframe: 5m\n"


def plan_of(body: str):  # type: ignore[no-untyped-def]
    return build_plan(check(load_text(HEADER + body, "t.yaml")))


def _calls(plan, name: str) -> set[ast.Node]:  # type: ignore[no-untyped-def]
    return {
        n for root in plan.market for n in root.walk() if isinstance(n, ast.Call) and n.func == name
    }


def test_the_same_series_written_five_ways_is_computed_once() -> None:
    plan = plan_of(
        "indicators:\n  ema50: ema(close, 50)\n"
        "entry:\n  long:\n"
        "    a: close > ema50\n"
        "    b: close > ema(close, 50)\n"
        "    c: ema( close ,50 ) < high\n"
        "    d: ema(source=close, period=50) > low\n"
        "    e: ema(close, $n) > 0\n"
        "params:\n  n: {value: 50}\n"
    )
    assert len(_calls(plan, "ema")) == 1


def test_defaults_are_filled_so_short_and_long_forms_share_a_series() -> None:
    plan = plan_of("entry:\n  long:\n    a: rsi(close) > 50\n    b: rsi(close, 14) < 70\n")
    assert len(_calls(plan, "rsi")) == 1


def test_warmup_is_derived_from_lookbacks_and_timeframes() -> None:
    plan = plan_of("entry:\n  long:\n    a: close > sma(close, 20)[5]\n")
    assert plan.warmup["5m"] >= 25
    hourly = plan_of("entry:\n  long:\n    a: close@1h > sma(close, 10)@1h\n")
    assert hourly.warmup["1h"] >= 10  # counted on hourly candles, however far back they go
    assert hourly.warmup_seconds >= 10 * 3600
    assert DataNeed(None, "1h") in hourly.data


def test_durations_count_candles_of_the_timeframe_they_are_read_in() -> None:
    plan = plan_of("entry:\n  long:\n    a: mean(volume, 24h) > mean(volume, 24h)@1h\n")
    windows = {int(n.args[1].value) for n in _calls(plan, "mean")}  # type: ignore[attr-defined]
    assert windows == {288, 24}


def test_kinetic_empire_plan_reads_btc_daily_and_hourly_candles() -> None:
    plan = build_plan(check(load_file(STRATEGIES / "kinetic_empire.yaml")))
    assert DataNeed("BTC/USDT", "1d") in plan.data
    assert DataNeed(None, "1h") in plan.data
    assert DataNeed("BTC/USDT", "1h") in plan.data
    assert plan.warmup["1d"] >= 50
    assert plan.warmup_seconds >= 50 * 86400


def test_a_warm_up_past_any_history_is_a_positioned_error_not_a_crash_later() -> None:
    """Each window is within its own limit, yet a window this long of 1d candles (or windows
    nested over windows) would move times past what any clock can hold: refused where written.
    """
    body = (
        "indicators:\n  slow: sma(close, 1000)\n"
        "entry:\n  long:\n"
        "    fine: close > slow\n"
        "    far: falling(source=close, periods=2000000)@1d\n"
    )
    try:
        plan_of(body)
    except StrategyError as error:
        [diagnostic] = error.diagnostics
        assert diagnostic.code == "warmup-too-long"
        assert diagnostic.span.location().endswith(":8:10")
        assert "5,479 years of candles" in diagnostic.message
    else:
        raise AssertionError("a 5,000-year warm-up was accepted")
