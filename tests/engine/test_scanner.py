"""The scanner, point in time: seed 000 properties 1, 2 and 27."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kinetic_rules.engine.scanner import refresh_rows, shortlist
from kinetic_rules.lang import ast
from kinetic_rules.lang.checked import Rule, ScannerRule
from kinetic_rules.spec.models import Scanner, ScannerStep

PAIRS = ["ADA/USDT", "BNB/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT", "USDC/USDT", "XRP/USDT"]
BLACKLIST = ["BNB/.*", "USDC/.*"]


def _rule(name: str, top: int | None) -> ScannerRule:
    return ScannerRule(name, top, Rule(name, ast.Name(name), "number", None), False)  # type: ignore[arg-type]


def _spec(top: int) -> Scanner:
    steps = [
        ScannerStep(filter="spread_ok"),
        ScannerStep(top=top, by="volatility"),
    ]
    return Scanner(refresh="30m", blacklist=BLACKLIST, steps=steps)  # type: ignore[arg-type]


timeline = pd.date_range("2024-01-01", periods=24, freq="5min", tz="UTC")
matrices = st.tuples(
    arrays(np.float64, (4, len(PAIRS)), elements=st.sampled_from([0.0, 1.0])),
    arrays(np.float64, (4, len(PAIRS)), elements=st.floats(0.0, 1.0)),
)


@settings(max_examples=100, deadline=None)
@given(matrices, st.integers(1, 8))
def test_shortlists_pass_every_filter_are_ranked_and_limited(values: tuple, top: int) -> None:  # type: ignore[type-arg]
    passes, volatility = values
    rules = [_rule("spread_ok", None), _rule("volatility", top)]
    rows = refresh_rows(_spec(top), timeline, 300)
    assert list(rows) == [5, 11, 17, 23]  # the candles closing at :30 and :00
    available = np.ones((len(timeline), len(PAIRS)), dtype=bool)
    picks = shortlist(
        _spec(top), rules, PAIRS, rows, len(timeline),
        {id(rules[0]): passes, id(rules[1]): volatility}, available,
    )  # fmt: skip
    assert not picks.allowed[: rows[0]].any()  # nothing before the first refresh
    for k, row in enumerate(rows):
        chosen = np.flatnonzero(picks.allowed[row])
        names = [PAIRS[i] for i in chosen]
        assert len(chosen) <= top  # property 2: at most `top`
        assert not any(n.startswith(("BNB/", "USDC/")) for n in names)  # properties 1, 27
        assert all(passes[k, i] == 1.0 for i in chosen)  # property 1: every filter holds
        eligible = [
            i for i in range(len(PAIRS))
            if passes[k, i] == 1.0 and not PAIRS[i].startswith(("BNB/", "USDC/"))
        ]  # fmt: skip
        # property 2: the kept ones are the most volatile; ties go to the earlier pair
        ranked = sorted(eligible, key=lambda i: (-volatility[k, i], i))[:top]
        assert sorted(chosen.tolist()) == sorted(ranked)
        until = rows[k + 1] if k + 1 < len(rows) else len(timeline)
        assert (picks.allowed[row:until] == picks.allowed[row]).all()  # held until the next


def test_a_shortlist_never_uses_values_after_its_refresh() -> None:
    rules = [_rule("spread_ok", None), _rule("volatility", 2)]
    rows = refresh_rows(_spec(2), timeline, 300)
    rng = np.random.default_rng(7)
    passes, volatility = np.ones((4, len(PAIRS))), rng.random((4, len(PAIRS)))
    available = np.ones((len(timeline), len(PAIRS)), dtype=bool)

    def run(vol: np.ndarray) -> np.ndarray:
        values = {id(rules[0]): passes, id(rules[1]): vol}
        return shortlist(_spec(2), rules, PAIRS, rows, len(timeline), values, available).allowed

    changed = volatility.copy()
    changed[2:] = rng.random((2, len(PAIRS)))  # rewrite the last two refreshes' values
    np.testing.assert_array_equal(run(volatility)[: rows[2]], run(changed)[: rows[2]])
