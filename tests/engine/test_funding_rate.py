"""`funding_rate` in rules: on futures, backtests read the stored funding rates point in
time (the latest funding time at or before each close); a spot file cannot read it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.backtest.runner import BacktestRequest, prepare, simulate
from kinetic_rules.compile.modes import check_modes
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.engine.futures import latest_funding_rate
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_text
from tests.engine.test_funding import BOTH_SIDES, funding_file_rates

STEP = pd.Timedelta(minutes=15)


def test_a_rate_is_known_from_the_close_at_or_after_its_funding_time() -> None:
    opens = pd.date_range("2024-03-01 07:30", periods=4, freq="15min", tz="UTC")
    funding = pd.DataFrame(
        {"rate": [0.0001, 0.0003]},
        index=pd.DatetimeIndex(["2024-03-01 00:00", "2024-03-01 08:00"], tz="UTC"),
    )
    rates = latest_funding_rate(opens, STEP, funding)
    # 07:30 closes at 07:45: the 00:00 rate; 07:45 closes at 08:00: the 08:00 rate is settled
    assert rates.tolist() == [0.0001, 0.0003, 0.0003, 0.0003]
    assert np.isnan(latest_funding_rate(opens - pd.Timedelta(days=1), STEP, funding)).all()


def test_a_futures_backtest_enters_only_where_the_stored_rate_allows(
    futures_store: Path, tmp_path: Path
) -> None:
    text = BOTH_SIDES.read_text().replace(
        "    cross: crossed_above(fast, slow)\n",
        "    cross: crossed_above(fast, slow)\n    cheap: funding_rate < 0.00015\n",
    )
    strategy = tmp_path / "funding_reader.yaml"
    strategy.write_text(text)
    prepared = prepare(BacktestRequest(strategy, futures_store))
    result = simulate(prepared.plan, prepared.feed, prepared.pairs, extras=prepared.extras)
    unfiltered = prepare(BacktestRequest(BOTH_SIDES, futures_store))
    before = simulate(unfiltered.plan, unfiltered.feed, unfiltered.pairs, extras=unfiltered.extras)

    longs = [t for t in result.trades if t.side == "long"]
    assert longs, "some long entries pass the funding filter"
    assert len(longs) < len([t for t in before.trades if t.side == "long"])
    for trade in longs:  # the rate the rule saw, found again from the exchange's own files
        rates = funding_file_rates(trade.pair.split("/")[0])
        close = trade.signal_time + STEP
        known = rates[rates.index <= close]
        assert float(known.iloc[-1]) < 0.00015
    assert not any("funding_rate" in line for line in result.assumptions.skipped)


FUNDING_ENTRY = """\
metadata: {{name: t}}
market: {{type: {market}}}
timeframe: 15m
entry:
  long:
    cheap: funding_rate < 0.01%
    tight: {book} < 0.1%
"""


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_funding_rate_exists_on_futures_only_and_the_book_only_live(market: str) -> None:
    text = FUNDING_ENTRY.format(market=market, book="(ask - bid) / ask")
    plan = build_plan(check(load_text(text, "t.yaml")))
    modes = {m.mode: [d.message for d in m.problems] for m in check_modes(plan)}
    spot = market == "spot"
    for mode in ("backtest", "replay"):
        problems = modes[mode]
        assert "entry.long.tight needs 'ask' and 'bid', which a" in problems[-1]
        assert len(problems) == (2 if spot else 1)
        assert ("entry.long.cheap needs 'funding_rate'" in problems[0]) == spot
    for mode in ("paper", "live"):
        if spot:
            (problem,) = modes[mode]
            assert "'funding_rate', which a spot market never has" in problem
        else:
            assert modes[mode] == []


def test_bid_and_ask_are_prices_and_funding_rate_a_ratio() -> None:
    from kinetic_rules.errors import StrategyError

    refused = {
        "bid > 1%": "bid is a price",
        "funding_rate > close": "a ratio",
        "ask - bid > 0.1%": "price",
    }
    for rule, says in refused.items():
        text = FUNDING_ENTRY.format(market="futures", book="spread")
        with pytest.raises(StrategyError, match=says):
            check(load_text(text.replace("funding_rate < 0.01%", rule), "t.yaml"))
    check(load_text(FUNDING_ENTRY.format(market="futures", book="(ask - bid) / ask"), "t.yaml"))


def test_a_pair_without_stored_funding_leaves_funding_rate_undefined_and_says_so(
    tmp_path: Path,
) -> None:
    import shutil

    from kinetic_rules.cli.app import main
    from tests.conftest import FIXTURES

    funding = tmp_path / "funding-files"
    funding.mkdir()
    for path in (FIXTURES / "binance-futures").glob("BTCUSDT-fundingRate-*"):
        shutil.copy(path, funding / path.name)  # BTC only
    store = tmp_path / "store"
    args = ["data", "import", "--quiet", "--data", str(store)]
    assert main([*args, str(FIXTURES / "binance-15m-csv"), str(funding)]) == 0
    strategy = tmp_path / "s.yaml"
    strategy.write_text(
        BOTH_SIDES.read_text().replace(
            "    cross: crossed_above(fast, slow)\n",
            "    cross: crossed_above(fast, slow)\n    cheap: funding_rate < 0.00015\n",
        )
    )
    prepared = prepare(BacktestRequest(strategy, store))
    result = simulate(prepared.plan, prepared.feed, prepared.pairs, extras=prepared.extras)
    longs = {t.pair for t in result.trades if t.side == "long"}
    assert longs == {"BTC/USDT"}  # ETH's rule never holds without a rate
    (note,) = [line for line in result.assumptions.skipped if "funding_rate" in line]
    assert "no funding data for ETH/USDT" in note
