"""A session retrains in a worker process without waiting for it, and a restart reads the
models it trained from disk instead of training them again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kinetic_rules.compile.evaluate import Evaluator
from kinetic_rules.compile.incremental import IncrementalEvaluator
from kinetic_rules.compile.plan import Plan, build_plan
from kinetic_rules.lang import ast
from kinetic_rules.lang.checker import check
from kinetic_rules.live.window import DEFAULT_WINDOW, window_sizes
from kinetic_rules.models import BackgroundTrainer, ModelCache
from kinetic_rules.spec.loader import load_file
from tests.conftest import fixture_candles

STRATEGY = Path(__file__).parent / "strategies" / "predicted.yaml"
PAIR = "SOL/USDT"


def session(plan: Plan, folder: Path) -> IncrementalEvaluator:
    evaluator = IncrementalEvaluator(plan, window_sizes(plan), DEFAULT_WINDOW)
    evaluator.models = ModelCache(folder)
    evaluator.trainer = BackgroundTrainer(evaluator.models)
    return evaluator


def probability(plan: Plan, values: dict[ast.Node, np.ndarray]) -> np.ndarray:
    return values[plan.strategy.indicators["p_up"].node]


def test_decisions_never_wait_for_training_and_a_restart_trains_nothing(tmp_path: Path) -> None:
    plan = build_plan(check(load_file(STRATEGY)))
    candles = fixture_candles(PAIR, "5m")
    history, arriving = candles.iloc[:6000], candles.iloc[6000:6003]
    batch = Evaluator(plan, fixture_candles)
    batch.models = ModelCache(None)
    expected = probability(plan, batch.evaluate(PAIR).values)

    live = session(plan, tmp_path)
    live.append(PAIR, "5m", history)
    first = probability(plan, live.evaluate(PAIR).values)
    # Nothing was trained in this process: the models train in the worker meanwhile,
    # and there is no model yet to predict with.
    assert live.models.fits == 0 and np.isnan(first[-1])
    assert live.trainer is not None
    live.trainer.wait()
    assert live.models.fits > 0
    live.append(PAIR, "5m", arriving.iloc[:1])
    after = probability(plan, live.evaluate(PAIR).values)
    # the model trained in the background is the backtest's, on the same candles
    assert np.isfinite(after[-1]) and after[-1] == expected[6000]

    restarted = session(plan, tmp_path)
    restarted.append(PAIR, "5m", pd.concat([history, arriving.iloc[:1]]))
    again = probability(plan, restarted.evaluate(PAIR).values)
    restarted.append(PAIR, "5m", arriving.iloc[1:])
    later = probability(plan, restarted.evaluate(PAIR).values)
    assert restarted.trainer is not None
    restarted.trainer.collect()
    assert restarted.models.fits == 0 and restarted.models.loads > 0
    assert again[-1] == expected[6000]
    np.testing.assert_array_equal(later[-2:], expected[6001:6003])
    live.trainer.shutdown()
    restarted.trainer.shutdown()
