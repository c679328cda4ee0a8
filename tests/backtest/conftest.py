"""Small hand-built backtest results, so every metric can be checked against arithmetic."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.engine.model import Assumptions, BacktestResult, Fill, Side, Trade
from tests.conftest import fixture_candles

FILL_MODEL = (
    "Signals are decided on a closed candle and filled at the next candle's open.",
    "Stops fill at their price, or at the open when a candle gaps through them.",
)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def make_trade(
    id: int,
    pair: str,
    entry: str | pd.Timestamp,
    exit: str | pd.Timestamp | None,
    entry_price: float,
    exit_price: float | None,
    amount: float,
    *,
    side: Side = "long",
    fee: float = 0.0,
    regime: str | None = "bull",
    reason: str = "trend_break",
    leverage: float = 1.0,
    partial: tuple[str, float, float] | None = None,  # (time, price, amount) before the exit
) -> Trade:
    """A trade with its fills; `fee` is the fee of each fill in the stake currency."""
    entry_time = pd.Timestamp(entry)
    trade = Trade(
        id=id,
        pair=pair,
        side=side,
        regime=regime,
        signal_time=entry_time - pd.Timedelta(minutes=5),
        entry_time=entry_time,
        entry_price=entry_price,
        amount=amount,
        stake=amount * entry_price / leverage,
        leverage=leverage,
        initial_stop=entry_price * (0.95 if side == "long" else 1.05),
        fills=[Fill(entry_time, entry_price, amount, fee, "entry")],
    )
    if exit is None or exit_price is None:
        return trade
    remaining = amount
    if partial is not None:
        when, price, part = partial
        trade.fills.append(Fill(pd.Timestamp(when), price, part, fee, "tp1"))
        remaining -= part
    exit_time = pd.Timestamp(exit)
    trade.fills.append(Fill(exit_time, exit_price, remaining, fee, reason))
    trade.exit_time = exit_time
    trade.exit_price = exit_price
    trade.exit_reason = reason
    trade.stop = trade.initial_stop
    return trade


def make_result(
    trades: Sequence[Trade],
    equity: pd.Series,
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    pairs: Sequence[str] = ("BTC/USDT", "ETH/USDT"),
    timeframe: str = "1d",
    starting_balance: float = 1000.0,
    name: str = "hand built",
    params: dict[str, float | int | bool | str] | None = None,
    candles: dict[str, pd.DataFrame] | None = None,
    regimes: Sequence[str] = ("bull", "bear"),
) -> BacktestResult:
    return BacktestResult(
        strategy_name=name,
        strategy_file="strategies/hand_built.yaml",
        strategy_sha256="0" * 63 + "1",
        params=dict(params if params is not None else {"roc_threshold": 1.5, "fast": 12}),
        timeframe=timeframe,
        pairs=list(pairs),
        start=start,
        end=end,
        assumptions=Assumptions(
            fee=0.001,
            slippage=0.0005,
            starting_balance=starting_balance,
            fill_model=FILL_MODEL,
            skipped=("orderbook_imbalance: needs live order books",),
        ),
        trades=list(trades),
        equity=equity,
        regimes=list(regimes),
        candles=dict(candles or {}),
    )


# Ten daily candles from 2024-01-01; equity at each close (the close of day d is d+1 00:00).
HAND_EQUITY = [1010.0, 1030.0, 1000.0, 970.0, 990.0, 1040.0, 1050.0, 1020.0, 1060.0, 1100.0]


@pytest.fixture
def hand_result() -> BacktestResult:
    """Three closed trades: +30, −60, +130 (the last one a short with 1 + 1 of fees)."""
    trades = [
        make_trade(1, "BTC/USDT", ts("2024-01-01"), ts("2024-01-03"), 100.0, 115.0, 2.0),
        make_trade(
            2, "ETH/USDT", ts("2024-01-03"), ts("2024-01-05"), 50.0, 35.0, 4.0, reason="stop_loss"
        ),
        make_trade(
            3,
            "BTC/USDT",
            ts("2024-01-06"),
            ts("2024-01-11"),
            200.0,
            134.0,
            2.0,
            side="short",
            fee=1.0,
            regime="bear",
        ),
    ]
    index = pd.date_range("2024-01-02", periods=10, freq="D", tz="UTC")
    equity = pd.Series(HAND_EQUITY, index=index)
    return make_result(trades, equity, start=ts("2024-01-01"), end=ts("2024-01-10"))


@pytest.fixture
def empty_result() -> BacktestResult:
    index = pd.date_range("2024-01-01 00:05", periods=12, freq="5min", tz="UTC")
    equity = pd.Series(1000.0, index=index)
    return make_result(
        [], equity, start=ts("2024-01-01"), end=ts("2024-01-01 00:55"), timeframe="5m"
    )


def sol_candles() -> pd.DataFrame:
    """Real SOL/USDT 5m candles (2024-02-15 … 2024-03-14), indexed by UTC open time."""
    return fixture_candles("SOL/USDT", "5m")


def trades_on(candles: pd.DataFrame, pair: str, spots: Sequence[tuple[int, int]]) -> list[Trade]:
    """Long trades entering at candle i's open and leaving at candle j's open, 0.1 % fees."""
    trades = []
    for n, (i, j) in enumerate(spots, start=1):
        entry, leave = candles.iloc[i], candles.iloc[j]
        amount = 100.0 / float(entry["open"])
        trades.append(
            make_trade(
                n,
                pair,
                candles.index[i],
                candles.index[j],
                float(entry["open"]),
                float(leave["open"]),
                amount,
                fee=0.1,
                reason="trend_break" if n % 2 else "stop_loss",
            )
        )
    return trades


def equity_for(candles: pd.DataFrame, trades: Sequence[Trade], balance: float) -> pd.Series:
    """A marked-to-market equity curve for `trades` over `candles`, at candle close times."""
    closes = candles["close"].to_numpy(np.float64)
    values = np.full(len(candles), balance)
    opens = candles.index
    for trade in trades:
        i = int(opens.searchsorted(trade.entry_time))
        assert trade.exit_time is not None
        j = int(opens.searchsorted(trade.exit_time))
        held = slice(i, j)
        values[held] += (closes[held] - trade.entry_price) * trade.amount - trade.fills[0].fee
        values[j:] += trade.profit
    return pd.Series(values, index=opens + (opens[1] - opens[0]))
