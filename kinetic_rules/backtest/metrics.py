"""The numbers a backtest is judged by, computed from a BacktestResult and nothing else.

Every definition is written down in docs/backtesting.md ("Metrics"). A value that does not
exist (no trades, a flat equity curve, a single day) is None, never NaN or infinity, so
that reports can print "–" and JSON can say null without special cases downstream.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from kinetic_rules.engine.model import BacktestResult, Trade

DAYS_PER_YEAR = 365  # crypto trades every day: annualize with calendar days
NO_REGIME = "(none)"  # the breakdown key of trades without a regime class (or exit reason)
_ONE_NS = pd.Timedelta(1, "ns")
_TINY = 1e-9  # a balance below this is an empty account: no return is measured from it
_DURATIONS = frozenset({"max_drawdown_duration", "avg_holding", "span"})


@dataclass(frozen=True)
class Metrics:
    """Headline figures of one backtest. Fractions are plain ratios (0.05 means 5 %)."""

    starting_balance: float
    final_balance: float
    total_return: float  # final / starting balance − 1
    profit_total: float  # sum of closed trades' profits, stake currency
    fees: float  # every fee paid, stake currency
    funding: float | None  # futures: funding paid (+) or received (−) by all trades; spot: None
    cagr: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float  # in [−1, 0]
    max_drawdown_abs: float  # stake currency lost from the peak to the trough, ≥ 0
    max_drawdown_peak: pd.Timestamp | None
    max_drawdown_trough: pd.Timestamp | None
    max_drawdown_duration: timedelta | None  # longest peak-to-recovery time
    exposure: float  # share of the span with at least one trade open, in [0, 1]
    trades: int  # closed trades
    open_trades: int
    wins: int
    draws: int
    losses: int
    win_rate: float | None
    gross_profit: float  # sum of winners' profits, ≥ 0
    gross_loss: float  # sum of losers' losses as a positive number, ≥ 0
    profit_factor: float | None  # None when there is no loss: see profit_factor_infinite
    expectancy: float | None  # mean profit per closed trade, stake currency
    expectancy_ratio: float | None  # mean profit ratio per closed trade
    best_trade: float | None  # best profit ratio
    worst_trade: float | None  # worst profit ratio
    avg_holding: timedelta | None
    span: timedelta  # from the first traded candle's open to the last candle's close
    days: int  # daily returns the ratios are computed from

    @property
    def profit_factor_infinite(self) -> bool:
        """Winners and no losers: the ratio is infinite, which JSON cannot say."""
        return self.profit_factor is None and self.gross_profit > 0 and self.gross_loss == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO-8601 UTC, durations as `<name>_seconds`, None for no value."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, timedelta):
                out[f"{f.name}_seconds"] = value.total_seconds()
            elif f.name in _DURATIONS:
                out[f"{f.name}_seconds"] = None
            elif isinstance(value, pd.Timestamp):
                out[f.name] = iso_time(value)
            elif isinstance(value, float):
                out[f.name] = value if math.isfinite(value) else None
            else:
                out[f.name] = value
        out["profit_factor_infinite"] = self.profit_factor_infinite
        return out


@dataclass(frozen=True)
class GroupRow:
    """One line of a breakdown: the closed trades sharing a pair, exit reason, regime or tag."""

    key: str
    trades: int
    wins: int
    draws: int
    losses: int
    win_rate: float | None
    profit: float  # stake currency
    avg_profit_ratio: float | None  # mean of the trades' profit ratios
    total_profit_ratio: float  # profit / starting balance: this group's share of the return
    avg_holding: timedelta | None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        holding = out.pop("avg_holding")
        out["avg_holding_seconds"] = None if holding is None else holding.total_seconds()
        return out


def iso_time(ts: pd.Timestamp) -> str:
    """ISO-8601 in UTC with a Z, to the second: the one way every report writes a time."""
    return utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc(ts: pd.Timestamp) -> pd.Timestamp:
    """Naive times are taken to be UTC already (that is what the data layer promises)."""
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def equity_curve(result: BacktestResult) -> pd.Series:
    """The equity at each candle close, UTC, with the starting balance at the start time.

    Prepending the start matters: a loss on the very first candle is a drawdown and a
    first-day return, which the raw curve alone would hide.
    """
    equity = result.equity.astype(np.float64)
    index = pd.DatetimeIndex(equity.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    equity = pd.Series(equity.to_numpy(), index=index).sort_index().dropna()
    start = utc(result.start)
    equity = equity[equity.index > start]
    head = pd.Series([float(result.assumptions.starting_balance)], index=pd.DatetimeIndex([start]))
    return pd.concat([head, equity]) if len(equity) else head


def _period_closes(curve: pd.Series, unit: Literal["D", "M"]) -> pd.Series:
    """The last equity of each UTC day (or month), labelled by the period it closes.

    A candle closing at exactly midnight belongs to the day before: it is that day's close.
    """
    body = curve.iloc[1:]
    naive = pd.DatetimeIndex(body.index).tz_localize(None) - _ONE_NS
    labels = naive.to_numpy().astype(f"datetime64[{unit}]")
    closes = body.groupby(labels).last()
    closes.index = pd.DatetimeIndex(closes.index).as_unit("ns").tz_localize("UTC")
    if unit == "D" and len(closes):  # days without candles kept their equity
        full = pd.date_range(closes.index[0], closes.index[-1], freq="D")
        closes = closes.reindex(full).ffill()
    return closes


def daily_equity(result: BacktestResult, curve: pd.Series | None = None) -> pd.Series:
    """The equity at the end of each calendar day (UTC), indexed by that day. `curve` is
    `equity_curve(result)` when the caller has it already (the reports build it once)."""
    return _period_closes(equity_curve(result) if curve is None else curve, "D")


def daily_returns(result: BacktestResult) -> pd.Series:
    """Return of each calendar day (UTC), the first against the starting balance."""
    return _returns(equity_curve(result), "D")


def monthly_returns(result: BacktestResult, curve: pd.Series | None = None) -> pd.Series:
    """Return of each calendar month (UTC), indexed by the month's first day; `curve` as
    for `daily_equity`.

    The first month is measured from the starting balance, the last up to the last close.
    """
    return _returns(equity_curve(result) if curve is None else curve, "M")


def _returns(curve: pd.Series, unit: Literal["D", "M"]) -> pd.Series:
    closes = _period_closes(curve, unit)
    before = closes.shift(1)
    if len(before):
        before.iloc[0] = curve.iloc[0]
    with np.errstate(all="ignore"):
        base = before.to_numpy()
        values = np.where(base > _TINY, closes.to_numpy() / base - 1, 0.0)
    return pd.Series(values, index=closes.index, dtype=np.float64)


def drawdown(curve: pd.Series) -> pd.Series:
    """Fall from the running peak, as a fraction in [−1, 0]; losing more than all is −1."""
    peak = curve.cummax().to_numpy()
    values = curve.to_numpy()
    with np.errstate(all="ignore"):
        dd = np.where(peak > _TINY, values / peak - 1.0, -1.0)
    return pd.Series(np.clip(dd, -1.0, 0.0), index=curve.index)


def _longest_underwater(curve: pd.Series) -> timedelta | None:
    """Longest time from a peak until equity is back at it (or the end, if it never is)."""
    values = curve.to_numpy()
    nanos = pd.DatetimeIndex(curve.index).as_unit("ns").asi8
    at_peak = np.flatnonzero(values >= np.maximum.accumulate(values))
    under = np.diff(at_peak) > 1  # consecutive peaks with losing candles in between
    spells = nanos[at_peak[1:]][under] - nanos[at_peak[:-1]][under]
    if at_peak[-1] < len(values) - 1:  # still under water at the end: count until then
        spells = np.append(spells, nanos[-1] - nanos[at_peak[-1]])
    if not len(spells):
        return None
    return pd.Timedelta(int(spells.max()), "ns").to_pytimedelta()


def _exposure(trades: Iterable[Trade], start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Length of the union of [entry, exit) intervals inside [start, end] over end − start.
    Times are compared as UTC nanoseconds (a naive time is UTC already)."""
    if end <= start:
        return 0.0
    first, last = utc(start).value, utc(end).value
    spans = sorted(
        (
            max(_nanos(t.entry_time), first),
            last if t.exit_time is None else min(_nanos(t.exit_time), last),
        )
        for t in trades
    )
    covered = 0
    run_start: int | None = None
    run_end = first
    for lo, hi in spans:
        if hi <= lo:
            continue
        if run_start is None or lo > run_end:
            if run_start is not None:
                covered += run_end - run_start
            run_start, run_end = lo, hi
        else:
            run_end = max(run_end, hi)
    if run_start is not None:
        covered += run_end - run_start
    return min(1.0, max(0.0, pd.Timedelta(covered, "ns") / (end - start)))


def _nanos(moment: pd.Timestamp) -> int:
    """`pd.Timestamp(moment).value`, without building a Timestamp that is one already."""
    return int(moment.value if isinstance(moment, pd.Timestamp) else pd.Timestamp(moment).value)


def _held_ns(trade: Trade) -> int | None:
    """`trade.duration` in nanoseconds (None while open): `Timestamp.value` is the UTC
    instant in nanoseconds whatever the time's unit, and a difference of two Timestamps
    is that of their instants. Integers, because a Timedelta costs microseconds a step."""
    exit_time = trade.exit_time
    if exit_time is None:
        return None
    return int(exit_time.value - trade.entry_time.value)


def _mean_of(held_ns: list[int]) -> timedelta | None:
    """The mean of durations given in nanoseconds, as Timedeltas summed and divided
    give it (their sum is exact in nanoseconds; the division is Timedelta's)."""
    if not held_ns:
        return None
    return (pd.Timedelta(sum(held_ns)) / len(held_ns)).to_pytimedelta()


def _ratios(returns: np.ndarray) -> tuple[float | None, float | None]:
    """Annualized Sharpe and Sortino of daily returns (risk-free rate 0)."""
    if len(returns) < 2:
        return None, None
    with np.errstate(all="ignore"):
        mean = float(np.mean(returns))
        std = float(np.std(returns, ddof=1))
        downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    scale = math.sqrt(DAYS_PER_YEAR)
    sharpe = _finite(mean / std * scale) if std > 1e-15 else None
    sortino = _finite(mean / downside * scale) if downside > 1e-15 else None
    return sharpe, sortino


def _cagr(start_value: float, end_value: float, span: timedelta) -> float | None:
    years = span.total_seconds() / (DAYS_PER_YEAR * 86400)
    if years <= 0 or start_value <= 0:
        return None
    ratio = end_value / start_value
    if ratio <= 0:  # the account is gone (or so nearly that the ratio underflows)
        return -1.0
    exponent = math.log(ratio) / years
    return math.expm1(exponent) if exponent < 700 else None  # beyond 1e304: meaningless


def compute_metrics(result: BacktestResult) -> Metrics:
    """Every headline figure of a backtest; never raises on an empty or flat result."""
    return _metrics(result, _facts(result))


def summarize(result: BacktestResult) -> tuple[Metrics, Breakdowns]:
    """`compute_metrics` and `breakdowns` together, each trade's profit worked out once
    for both (a sum over its fills: thousands of trades make it count)."""
    facts = _facts(result)
    return _metrics(result, facts), _breakdowns(result, facts)


def _metrics(result: BacktestResult, facts: list[_Facts]) -> Metrics:
    curve = equity_curve(result)
    start_value = float(curve.iloc[0])
    final = float(curve.iloc[-1])
    start = utc(result.start)
    end = curve.index[-1] if len(curve) > 1 else utc(result.end)
    span = max(pd.Timedelta(0), end - start).to_pytimedelta()

    dd = drawdown(curve)
    trough_at = int(np.argmin(dd.to_numpy()))
    max_dd = float(dd.iloc[trough_at])
    before = curve.to_numpy()[: trough_at + 1][::-1]
    peak_at = trough_at - int(np.argmax(before))  # the last time at the peak
    has_dd = max_dd < 0
    returns = _returns(curve, "D").to_numpy()  # daily_returns, from the curve at hand
    sharpe, sortino = _ratios(returns)
    cagr = _cagr(start_value, final, span)

    profits = np.array([p for _, p, _, _ in facts], dtype=np.float64)
    ratios = np.array([r for _, _, r, _ in facts], dtype=np.float64)
    wins, losses = int((profits > 0).sum()), int((profits < 0).sum())
    gross_profit = float(profits[profits > 0].sum())
    gross_loss = float(np.abs(profits[profits < 0]).sum())
    count = len(facts)
    return Metrics(
        starting_balance=start_value,
        final_balance=final,
        total_return=(_finite(final / start_value - 1) or 0.0) if start_value > 0 else 0.0,
        profit_total=float(profits.sum()),
        fees=float(sum(t.fees for t in result.trades)),
        funding=float(sum(t.funding for t in result.trades)) if _futures(result) else None,
        cagr=cagr,
        sharpe=sharpe,
        sortino=sortino,
        calmar=_finite(cagr / -max_dd) if cagr is not None and has_dd else None,
        max_drawdown=max_dd,
        max_drawdown_abs=float(curve.iloc[peak_at] - curve.iloc[trough_at]) if has_dd else 0.0,
        max_drawdown_peak=curve.index[peak_at] if has_dd else None,
        max_drawdown_trough=curve.index[trough_at] if has_dd else None,
        max_drawdown_duration=_longest_underwater(curve),
        exposure=_exposure(result.trades, start, end),
        trades=count,
        open_trades=len(result.trades) - count,
        wins=wins,
        draws=count - wins - losses,
        losses=losses,
        win_rate=wins / count if count else None,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=_finite(gross_profit / gross_loss) if gross_loss > 0 else None,
        expectancy=float(profits.mean()) if count else None,
        expectancy_ratio=float(ratios.mean()) if count else None,
        best_trade=float(ratios.max()) if count else None,
        worst_trade=float(ratios.min()) if count else None,
        avg_holding=_mean_of([d for _, _, _, d in facts if d is not None]),
        span=span,
        days=len(returns),
    )


def _futures(result: BacktestResult) -> bool:
    """Futures trades carry their margin; a spot trade has none."""
    return any(t.margin is not None for t in result.trades)


def funding_by_pair(result: BacktestResult) -> list[tuple[str, int, float]]:
    """Futures: (pair, trades, funding paid) for every pair, most paid first; spot: empty.
    Trades still open at the end count too: they paid their funding."""
    if not _futures(result):
        return []
    paid = {pair: [0, 0.0] for pair in result.pairs}
    for trade in result.trades:
        row = paid.setdefault(trade.pair, [0, 0.0])
        row[0] += 1
        row[1] += trade.funding
    rows = [(pair, int(n), float(total)) for pair, (n, total) in paid.items()]
    return sorted(rows, key=lambda r: (-r[2], r[0]))


_Facts = tuple[Trade, float, float, "int | None"]  # trade, profit, ratio, nanoseconds held


def _facts(result: BacktestResult) -> list[_Facts]:
    """Each closed trade's profit, profit ratio (as `Trade.profit_ratio`) and holding time,
    worked out once (they are sums over its fills), in the order of the trades."""
    facts = []
    for trade in result.closed_trades():
        profit = trade.profit
        facts.append((trade, profit, profit / trade.stake if trade.stake else 0.0, _held_ns(trade)))
    return facts


def _breakdown(
    result: BacktestResult,
    key: Callable[[Trade], Iterable[str]],
    keys: Iterable[str] = (),
    facts: list[_Facts] | None = None,
) -> list[GroupRow]:
    """Group closed trades (a trade may belong to several groups); `keys` are listed even
    without trades. Best profit first."""
    groups: dict[str, list[_Facts]] = {k: [] for k in keys}
    for fact in _facts(result) if facts is None else facts:
        for name in key(fact[0]):
            groups.setdefault(name, []).append(fact)
    balance = float(result.assumptions.starting_balance)
    rows = []
    for name, members in groups.items():
        profits = [p for _, p, _, _ in members]
        wins = sum(p > 0 for p in profits)
        losses = sum(p < 0 for p in profits)
        total = float(sum(profits))
        rows.append(
            GroupRow(
                key=name,
                trades=len(members),
                wins=wins,
                draws=len(members) - wins - losses,
                losses=losses,
                win_rate=wins / len(members) if members else None,
                profit=total,
                avg_profit_ratio=float(np.mean([r for _, _, r, _ in members])) if members else None,
                total_profit_ratio=total / balance if balance > 0 else 0.0,
                avg_holding=_mean_of([d for _, _, _, d in members if d is not None]),
            )
        )
    return sorted(rows, key=lambda r: (-r.profit, -r.trades, r.key))


def by_pair(result: BacktestResult, facts: list[_Facts] | None = None) -> list[GroupRow]:
    """One row per pair of the backtest, traded or not."""
    return _breakdown(result, lambda t: (t.pair,), result.pairs, facts)


def by_exit_reason(result: BacktestResult, facts: list[_Facts] | None = None) -> list[GroupRow]:
    """One row per reason of the final closing fill (a partial take-profit counts under the
    reason that closed the rest of the trade)."""
    return _breakdown(result, lambda t: (t.exit_reason or NO_REGIME,), (), facts)


def by_regime(result: BacktestResult, facts: list[_Facts] | None = None) -> list[GroupRow]:
    """One row per regime class of the strategy, by the regime at the signal candle."""
    return _breakdown(result, lambda t: (t.regime or NO_REGIME,), result.regimes, facts)


def by_tag(result: BacktestResult, facts: list[_Facts] | None = None) -> list[GroupRow]:
    """One row per entry tag of the strategy; a trade counts under each of its tags, so
    the rows may add up to more than the total. Empty for a strategy without tags."""
    if not result.tags and not any(t.tags for t in result.trades):
        return []
    return _breakdown(result, lambda t: t.tags or (NO_REGIME,), result.tags, facts)


@dataclass(frozen=True)
class Breakdowns:
    """Every breakdown of one backtest, computed once and shared by the terminal summary,
    results.json and report.html."""

    pair: list[GroupRow]
    exit_reason: list[GroupRow]
    regime: list[GroupRow]  # the strategy's regime classes (none: empty)
    tag: list[GroupRow]  # empty for a strategy without entry tags
    funding: list[tuple[str, int, float]]  # empty for spot


def breakdowns(result: BacktestResult) -> Breakdowns:
    return _breakdowns(result, _facts(result))


def _breakdowns(result: BacktestResult, facts: list[_Facts]) -> Breakdowns:
    return Breakdowns(
        pair=by_pair(result, facts),
        exit_reason=by_exit_reason(result, facts),
        regime=by_regime(result, facts),
        tag=by_tag(result, facts),
        funding=funding_by_pair(result),
    )
