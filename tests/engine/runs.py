"""What the strategy tests look at: a backtest, and every named rule's values per candle."""

from __future__ import annotations

import pandas as pd

from kinetic_rules.backtest.export import signal_frame
from kinetic_rules.backtest.runner import BacktestRequest, prepare
from kinetic_rules.compile.evaluate import Evaluator


def signal_frames(request: BacktestRequest) -> dict[str, pd.DataFrame]:
    """Per pair, every named rule's value at every candle, as the backtest saw them."""
    prepared = prepare(request)
    evaluator = Evaluator(prepared.plan, prepared.feed)
    return {p: signal_frame(prepared.plan, evaluator.evaluate(p)) for p in prepared.pairs}
