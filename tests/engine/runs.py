"""What the strategy tests look at: a backtest, and every named rule's values per candle."""

from __future__ import annotations

import pandas as pd

from kinetic_rules.backtest.export import signal_frame
from kinetic_rules.backtest.runner import BacktestRequest, Feed, prepare, simulate
from kinetic_rules.compile.evaluate import Evaluator
from kinetic_rules.engine.model import END_OF_DATA, BacktestResult, Trade
from kinetic_rules.timeframes import timeframe_seconds


def signal_frames(request: BacktestRequest) -> dict[str, pd.DataFrame]:
    """Per pair, every named rule's value at every candle, as the backtest saw them."""
    prepared = prepare(request)
    evaluator = Evaluator(prepared.plan, prepared.feed)
    return {p: signal_frame(prepared.plan, evaluator.evaluate(p)) for p in prepared.pairs}


# -- the portfolio's values at a close, recomputed from the trades alone -----------------------
# Independent of the engine's own bookkeeping: what a reader of the trade list can work out.
def settled_equity(result: BacktestResult, close: pd.Timestamp) -> float:
    """Starting balance plus the profit of every trade whose last fill is known by `close`."""
    step = pd.Timedelta(result.timeframe)
    done = [t for t in result.trades if t.exit_reason != END_OF_DATA]
    return result.assumptions.starting_balance + sum(
        t.profit for t in done if t.fills[-1].time + step <= close
    )


def held_share(trade: Trade, close: pd.Timestamp, step: pd.Timedelta) -> float:
    """The share of the trade's amount not yet sold by fills known at `close`."""
    known = [f for f in trade.fills[1:] if f.time + step <= close and f.reason != END_OF_DATA]
    return 1.0 - sum(f.amount for f in known) / trade.amount


def marked_open_profit(result: BacktestResult, close: pd.Timestamp) -> float:
    """The profit of the trades in the market at `close` if all were closed at its prices."""
    step = pd.Timedelta(result.timeframe)
    total = 0.0
    for trade in result.trades:
        ended = trade.fills[-1].time + step <= close and trade.exit_reason != END_OF_DATA
        if trade.entry_time + step > close or ended:
            continue
        sign = 1.0 if trade.side == "long" else -1.0
        known = [f for f in trade.fills[1:] if f.time + step <= close and f.reason != END_OF_DATA]
        value = -trade.fills[0].fee
        value += sum(sign * (f.price - trade.entry_price) * f.amount - f.fee for f in known)
        candles = result.candles[trade.pair]
        price = float(candles["close"].iloc[candles.index.searchsorted(close - step, "right") - 1])
        remaining = trade.amount * held_share(trade, close, step)
        total += value + sign * (price - trade.entry_price) * remaining
    return total


def closed_today(result: BacktestResult, close: pd.Timestamp) -> float:
    """Profit of the trades whose last fill was on the day of `close` (UTC), known by then."""
    step = pd.Timedelta(result.timeframe)
    day = close.floor("D")
    return sum(
        t.profit
        for t in result.trades
        if t.exit_reason != END_OF_DATA
        and day <= t.fills[-1].time
        and t.fills[-1].time + step <= close
    )


def cut_at(feed: Feed, moment: pd.Timestamp) -> Feed:
    """The candles a bot holds at `moment`: of every timeframe, those closed by then."""

    def cut(pair: str, timeframe: str) -> pd.DataFrame:
        frame = feed(pair, timeframe)
        length = pd.Timedelta(seconds=timeframe_seconds(timeframe))
        return frame[frame.index + length <= moment]

    return cut


def same_trade(a: Trade, b: Trade) -> bool:
    fills = [(f.time, f.price, f.amount, f.fee, f.reason) for f in a.fills]
    return (a.pair, a.side, a.signal_time, a.entry_time, a.entry_price, a.stake, a.amount) == (
        b.pair, b.side, b.signal_time, b.entry_time, b.entry_price, b.stake, b.amount
    ) and fills == [(f.time, f.price, f.amount, f.fee, f.reason) for f in b.fills]  # fmt: skip


def assert_no_look_ahead(request: BacktestRequest, cuts: list[pd.Timestamp]) -> None:
    """A backtest on data cut at a moment agrees with the full one on everything known then:
    trades closed by then are the same, fill for fill; those still open have the same past."""
    prepared = prepare(request)
    full = simulate(prepared.plan, prepared.feed, prepared.pairs).trades
    step = pd.Timedelta(seconds=timeframe_seconds(prepared.plan.timeframe))
    for moment in cuts:
        cut = simulate(prepared.plan, cut_at(prepared.feed, moment), prepared.pairs).trades
        known = [
            t for t in full if t.exit_reason != END_OF_DATA and t.fills[-1].time + step <= moment
        ]
        finished = [t for t in cut if t.exit_reason != END_OF_DATA]
        assert len(known) == len(finished) and len(known) > 5
        assert all(same_trade(a, b) for a, b in zip(known, finished, strict=True))
        for trade in (t for t in cut if t.exit_reason == END_OF_DATA):
            twin = next(t for t in full if (t.pair, t.entry_time) == (trade.pair, trade.entry_time))
            before = [(f.time, f.price) for f in trade.fills[:-1]]
            assert before == [(f.time, f.price) for f in twin.fills[: len(before)]]
