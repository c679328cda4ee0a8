"""Plain data the engine produces and every later stage (reports, persistence, live) reads.

No behaviour here beyond small derived properties: a Trade is a record, a BacktestResult
is a bundle of records, so they serialise to JSON and CSV without ceremony.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

Side = Literal["long", "short"]

# Why a trade (or part of it) was closed. Strategy exits use their rule name instead.
STOP_LOSS = "stop_loss"
TRAILING_STOP = "trailing_stop"
END_OF_DATA = "end_of_data"  # still open when the data ran out: closed at the last close
PROTECTION = "protection"  # a protection with close_all came into force
LIQUIDATION = "liquidation"  # futures: the price reached the liquidation price


@dataclass
class Fill:
    """One execution: the entry, a partial take-profit, or the final exit."""

    time: pd.Timestamp
    price: float
    amount: float  # base-asset units, always positive
    fee: float  # in the stake currency
    reason: str  # "entry", a take-profit name, an exit rule name, stop_loss, …


@dataclass
class Trade:
    id: int
    pair: str
    side: Side
    regime: str | None  # the regime class at the signal candle
    signal_time: pd.Timestamp  # open time of the candle whose close decided the entry
    entry_time: pd.Timestamp
    entry_price: float
    amount: float  # base-asset units bought (or sold short) at entry
    stake: float  # what the trade put up, in the stake currency: amount × entry_price / leverage
    leverage: float
    initial_stop: float
    exit_time: pd.Timestamp | None = None
    exit_price: float | None = None  # average price of all closing fills
    exit_reason: str | None = None  # reason of the final closing fill
    stop: float | None = None  # the stop in force when the trade closed
    fills: list[Fill] = field(default_factory=list)
    tags: tuple[str, ...] = ()  # the strategy's entry tags that held at the signal candle
    margin: float | None = None  # futures: the isolated margin backing the trade (its stake)
    liquidation_price: float | None = None  # futures: where the exchange would liquidate it
    funding: float = 0.0  # futures: funding paid (+) or received (−), in the stake currency

    @property
    def is_open(self) -> bool:
        return self.exit_time is None

    @property
    def fees(self) -> float:
        return sum([f.fee for f in self.fills])

    @property
    def profit(self) -> float:
        """Realised profit in the stake currency, after every fee and funding payment."""
        return self.profit_and_fees()[0]

    def profit_and_fees(self) -> tuple[float, float]:
        """`profit` and `fees` at once (both are sums over the fills)."""
        sign = 1.0 if self.side == "long" else -1.0
        entry = self.entry_price
        gross = sum(
            [sign * (f.price - entry) * f.amount for f in self.fills if f.reason != "entry"]
        )
        fees = self.fees
        return gross - fees - self.funding, fees

    @property
    def profit_ratio(self) -> float:
        """Profit as a fraction of the stake put up (the margin, for a futures trade)."""
        return self.profit / self.stake if self.stake else 0.0

    @property
    def is_winner(self) -> bool:
        return self.profit > 0

    @property
    def duration(self) -> pd.Timedelta | None:
        return None if self.exit_time is None else self.exit_time - self.entry_time

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row.update(profit=self.profit, profit_ratio=self.profit_ratio, fees=self.fees)
        return row


@dataclass(frozen=True)
class Assumptions:
    """Everything about the simulation a reader must know to trust its numbers."""

    fee: float
    slippage: float
    starting_balance: float
    fill_model: tuple[str, ...]  # one plain sentence per rule of the fill model
    skipped: tuple[str, ...] = ()  # rules that could not run in a backtest, and why
    warnings: tuple[str, ...] = ()  # what the run showed about the strategy, e.g. unreachable stops
    gaps: str = "keep"  # the gap policy: missing candles kept as holes, or filled
    durations: str = "time"  # under keep: duration windows span time, or count candles held
    # per pair, base timeframe: candles filled (fill) or missing and left out (keep)
    gap_candles: tuple[tuple[str, int], ...] = ()
    warmup: tuple[str, ...] = ()  # the warm-up waited for, how converged its slowest
    # indicator was, pairs whose data ended inside it, a timerange that started inside it


@dataclass
class BacktestResult:
    strategy_name: str
    strategy_file: str
    strategy_sha256: str
    params: dict[str, float | int | bool | str]
    timeframe: str
    pairs: list[str]
    start: pd.Timestamp  # first candle traded on (after warm-up)
    end: pd.Timestamp  # last candle of the data
    assumptions: Assumptions
    trades: list[Trade]
    equity: pd.Series  # account value at each candle close (marked to market), UTC index
    regimes: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # the strategy's entry tags, in file order
    # per pair, for charts: a mapping that may read each pair's candles only when asked
    candles: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    elapsed_seconds: float = 0.0

    def closed_trades(self) -> list[Trade]:
        return [t for t in self.trades if not t.is_open]

    def drawdown(self) -> pd.Series:
        peak = self.equity.cummax()
        return self.equity / peak - 1.0

    def returns(self) -> np.ndarray:
        values = self.equity.to_numpy(dtype=np.float64)
        return np.diff(values) / values[:-1] if len(values) > 1 else np.zeros(0)
