"""A model in a strategy, through the engine: seed 003's properties 11–14 written as rules,
point in time on real candles, switched off, and the same in a replay as in a backtest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.backtest.runner import BacktestRequest, prepare, simulate
from kinetic_rules.compile.evaluate import Evaluator, Feed, PairSignals
from kinetic_rules.compile.plan import Plan, build_plan
from kinetic_rules.lang import ast
from kinetic_rules.lang.checker import check
from kinetic_rules.models import ModelCache
from kinetic_rules.spec.loader import load_text
from tests.conftest import fixture_candles
from tests.live.test_replay import fingerprint, replay

STRATEGY = Path(__file__).parent / "strategies" / "predicted.yaml"
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def plan_of(text: str, overrides: dict[str, str] | None = None) -> Plan:
    return build_plan(check(load_text(text, str(STRATEGY)), overrides))


def signals(plan: Plan, pair: str, feed: Feed = fixture_candles) -> tuple[PairSignals, Evaluator]:
    evaluator = Evaluator(plan, feed)
    evaluator.models = ModelCache(None)
    return evaluator.evaluate(pair), evaluator


def named(plan: Plan, signal: PairSignals, name: str) -> np.ndarray:
    rules = {**plan.strategy.indicators, **plan.strategy.conditions}
    return signal.values[rules[name].node]


@pytest.fixture(scope="module")
def plan() -> Plan:
    return plan_of(STRATEGY.read_text())


@pytest.mark.parametrize("pair", PAIRS)
def test_seed_003_properties_hold_at_every_candle(plan: Plan, pair: str) -> None:
    signal, evaluator = signals(plan, pair)
    p_up = named(plan, signal, "p_up")
    model_ok = named(plan, signal, "model_ok")
    multiplier = named(plan, signal, "multiplier")
    known = np.isfinite(p_up)
    assert known.sum() > 3000 and model_ok.any() and not model_ok.all()
    # 11: a probability
    assert np.all((p_up[known] >= 0) & (p_up[known] <= 1))
    # 12: above 0.7 the confidence multiplier is at least 1
    assert np.all(multiplier[known & (p_up > 0.7)] >= 1)
    # 13: below 0.3 a long is filtered, the size cut, while the model counts
    low = model_ok & (p_up < 0.3)
    assert not signal.rule(plan.strategy.entry["long"]["not_bearish"])[low].any()
    assert np.all(multiplier[low] < 1)
    # 14: while the last 100 scored predictions are less than 55% right, the model is off:
    # the multiplier is 1 and no entry is filtered by it, whatever it predicts
    off = ~model_ok
    assert np.all(multiplier[off] == 1)
    assert signal.rule(plan.strategy.entry["long"]["not_bearish"])[off].all()
    assert evaluator.model_records and all(r.pair == pair for r in evaluator.model_records)


def test_the_sizes_of_real_trades_follow_the_model(plan: Plan) -> None:
    """Through the portfolio: no long entered on a bearish prediction the model stood by,
    and stakes cut or boosted only where the rules say so."""
    result = simulate(plan, fixture_candles, PAIRS)
    assert len(result.trades) > 50
    # property 26: the report says which spans had no model, and the strategy ran on
    (note,) = [n for n in result.assumptions.skipped if n.startswith("model trend")]
    assert "retraining windows gave no model" in note and "fewer than min_samples" in note
    for pair in PAIRS:
        signal, _ = signals(plan, pair)
        index = signal.index
        p_up, ok = named(plan, signal, "p_up"), named(plan, signal, "model_ok")
        for trade in (t for t in result.trades if t.pair == pair):
            at = index.get_loc(trade.signal_time)
            if trade.side == "long":
                assert not (ok[at] and p_up[at] < 0.3)
            else:
                assert not (ok[at] and p_up[at] > 0.7)


@pytest.mark.parametrize("cut", ["2024-03-01 12:00", "2024-03-09 07:35"])
def test_cutting_the_candles_at_t_leaves_the_rules_values_up_to_t_unchanged(
    plan: Plan, cut: str
) -> None:
    end = pd.Timestamp(cut, tz="UTC")

    def until_cut(pair: str, timeframe: str) -> pd.DataFrame:
        candles = fixture_candles(pair, timeframe)
        return candles[candles.index <= end]

    full, _ = signals(plan, "ETH/USDT")
    part, _ = signals(plan, "ETH/USDT", until_cut)
    rows = len(part.index)
    compared = 0
    for node, values in part.values.items():
        if any(isinstance(n, ast.Predict) for n in node.walk()):
            np.testing.assert_array_equal(values, full.values[node][:rows])
            compared += 1
    assert compared >= 4


def test_switched_off_the_strategy_trades_as_if_it_had_no_model() -> None:
    text = STRATEGY.read_text()
    off = plan_of(text, {"use_model": "false"})
    without = text.replace(
        "multiplier: if model_ok and p_up > 0.7 then 1.2 else (if model_ok and p_up < 0.3 "
        "then 0.5 else 1)",
        "multiplier: 1",
    )
    without = without.replace("    not_bearish: not (model_ok and p_up < 0.3)\n", "")
    without = without.replace("    not_bullish: not (model_ok and p_up > 0.7)\n", "")
    without = without.replace("  p_up: predict(trend)\n", "")
    without = without[: without.index("\nconditions:")] + without[without.index("\nportfolio:") :]
    # the models section and its switch, up to the indicators
    without = without[: without.index("\nparams:")] + without[without.index("\nindicators:") :]
    assert "predict(" not in without and "model_accuracy(" not in without
    bare = plan_of(without)
    evaluator_off = Evaluator(off, fixture_candles)
    evaluator_off.models = cache = ModelCache(None)
    evaluator_off.evaluate("BTC/USDT")
    assert cache.fits == 0  # nothing is trained for a model switched off
    first = simulate(off, fixture_candles, PAIRS).trades
    second = simulate(bare, fixture_candles, PAIRS).trades
    assert len(first) > 50
    assert [fingerprint(t) for t in first] == [fingerprint(t) for t in second]
    on = simulate(plan_of(text), fixture_candles, PAIRS).trades
    assert [fingerprint(t) for t in on] != [fingerprint(t) for t in first]


@pytest.mark.slow
def test_replay_equals_backtest_with_a_model(fixture_store: Path) -> None:
    request = BacktestRequest(STRATEGY, fixture_store)
    prepared = prepare(request)
    backtest = simulate(prepared.plan, prepared.feed, prepared.pairs)
    live = replay(request)
    assert len(backtest.trades) > 50
    assert [fingerprint(t) for t in live.trades()] == [fingerprint(t) for t in backtest.trades]
