"""A backtest sizes every entry signal of a pair in one evaluation of the stake rule; a
decision alone (the live runtime's) evaluates it at its candle. Both give the same bits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.compile.plan import Plan, build_plan
from kinetic_rules.compile.trade_eval import evaluate_at
from kinetic_rules.engine.entries import stake_rule_values
from kinetic_rules.engine.pairs import prepare_market
from kinetic_rules.engine.positions import entry_signals
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_text


def plan_of(stake: str) -> Plan:
    text = f"""
metadata: {{name: stakes}}
timeframe: 5m
market: {{type: futures}}
sizing: {{stake: "{stake}"}}
entry:
  long:
    go: close > open
  short:
    go: close < open
"""
    return build_plan(check(load_text(text, "t.yaml")))


def frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(7)
    made = {}
    for pair in ("A/USDT", "B/USDT"):
        closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
        opens = closes * np.exp(rng.normal(0, 0.004, 400))
        index = pd.date_range("2024-01-01", periods=400, freq="5min", tz="UTC", name="date")
        made[pair] = pd.DataFrame(
            {
                "open": opens,
                "high": np.maximum(opens, closes) * 1.001,
                "low": np.minimum(opens, closes) * 0.999,
                "close": closes,
                "volume": rng.uniform(1, 10, 400),
            },
            index=index,
        )
    return made


SIDED = (
    "if side > 0 then min(20%, 5% * close / ema(close, 8)) "
    "else max(1%, (entry_price - atr(3)) / entry_price * 10% + side * 1%)"
)


def test_every_signal_sized_at_once_is_what_one_decision_computes() -> None:
    plan = plan_of(SIDED)
    made = frames()
    market = prepare_market(plan, lambda pair, tf: made[pair], sorted(made))
    rule = plan.strategy.stake
    assert rule is not None
    checked = 0
    for data in market.pairs:
        for side in ("long", "short"):
            signals = entry_signals(data, side)
            values = stake_rule_values(plan, data, side, signals)
            assert values is not None and sorted(values) == signals.tolist()
            sign = 1.0 if side == "long" else -1.0
            for local in signals.tolist():
                env = {"entry_price": float(data.prices["close"][local]), "side": sign}
                alone = evaluate_at(plan, rule.node, data.signals, local, env)
                assert np.float64(values[local]).tobytes() == np.float64(alone).tobytes()
                checked += 1
    assert checked > 100


@pytest.mark.parametrize("stake", ["5% * equity / equity", "(entry_price - stop) / entry_price"])
def test_a_rule_reading_what_only_the_decision_knows_is_left_to_it(stake: str) -> None:
    plan = plan_of(stake)
    made = frames()
    market = prepare_market(plan, lambda pair, tf: made[pair], sorted(made))
    data = market.pairs[0]
    assert stake_rule_values(plan, data, "long", entry_signals(data, "long")) is None
