"""Inline SVG charts for the HTML report, drawn in Python so the page needs no script or network.

Long series are thinned before drawing (OHLC aggregation for candles, one point per bucket
for lines): a chart is at most ~1,500 bars wide, whatever the data length, which keeps a
40-pair report small. Every piece of text placed in a chart is masked and escaped (`escape`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape as _escape

import numpy as np
import pandas as pd

from kinetic_rules.engine.model import Trade
from kinetic_rules.secrets import mask


def escape(text: str) -> str:
    """Text placed in a chart: masked (no secret reaches the file), then escaped."""
    return _escape(mask(text), quote=True)


MAX_BARS = 1500
MARKED_TRADES = 60  # more trades than this on one chart: counted in a band, not marked one by one
BAND = 14  # height of that band, under the candles, so marks never cover the prices
MARK_ROOM = 16  # pixels kept free over and under the candles for the trade marks beside them
WIDTH, LEFT, RIGHT, TOP, BOTTOM = 1000, 70, 10, 10, 24
WIN, LOSS = "#15803d", "#dc2626"
UP, DOWN = "#9fb3c8", "#52606d"  # muted candles, so trade markers stand out


def bucket_size(length: int, limit: int = MAX_BARS) -> int:
    return max(1, math.ceil(length / limit))


def downsample_ohlc(candles: pd.DataFrame, limit: int = MAX_BARS) -> pd.DataFrame:
    """Merge runs of k consecutive candles into one: first open, max high, min low, last close."""
    k = bucket_size(len(candles), limit)
    if k == 1:
        return candles[["open", "high", "low", "close"]].astype(np.float64)
    starts = np.arange(0, len(candles), k)
    ends = np.minimum(starts + k, len(candles)) - 1
    high = candles["high"].to_numpy(np.float64)
    low = candles["low"].to_numpy(np.float64)
    return pd.DataFrame(
        {
            "open": candles["open"].to_numpy(np.float64)[starts],
            "high": np.maximum.reduceat(high, starts),
            "low": np.minimum.reduceat(low, starts),
            "close": candles["close"].to_numpy(np.float64)[ends],
        },
        index=candles.index[starts],
    )


def downsample_line(series: pd.Series, how: str, limit: int = MAX_BARS) -> pd.Series:
    """One point per bucket: its last value, or its minimum (so a drawdown's bottom shows)."""
    k = bucket_size(len(series), limit)
    if k == 1:
        return series
    starts = np.arange(0, len(series), k)
    values = series.to_numpy(np.float64)
    if how == "min":
        picked = np.minimum.reduceat(values, starts)
    else:
        picked = values[np.minimum(starts + k, len(series)) - 1]
    return pd.Series(picked, index=series.index[np.minimum(starts + k, len(series)) - 1])


def nice_ticks(low: float, high: float, count: int = 5) -> tuple[list[float], int]:
    """Round values (1, 2, 2.5, 5 × 10ⁿ apart) covering [low, high], and the decimals
    their labels need."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return ([low], 2) if math.isfinite(low) else ([], 0)
    raw = (high - low) / count
    exponent = math.floor(math.log10(raw))
    power = 10.0**exponent
    mantissa = next(m for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    step = mantissa * power
    decimals = max(0, -exponent + (1 if mantissa == 2.5 else 0) - (1 if mantissa == 10 else 0))
    first = math.ceil(low / step) * step
    ticks = [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]
    return ticks, decimals


class Frame:
    """Maps times (ns since epoch) and values onto one chart's plotting area."""

    def __init__(
        self, t0: int, t1: int, lo: float, hi: float, height: int, band: int = 0, room: int = 0
    ) -> None:
        self.t0, self.t1 = t0, max(t1, t0 + 1)
        self.height = height
        self.bottom = height - BOTTOM - band  # a band under the plot, above the dates
        # `room` pixels kept free over and under the values (for trade marks)
        share = min(0.3, room / max(1, self.bottom - TOP))
        pad = (hi - lo) * (0.04 + share) or abs(hi) * 0.01 or 1.0
        self.lo, self.hi = lo - pad, hi + pad

    def x(self, t: float) -> float:
        return LEFT + (t - self.t0) / (self.t1 - self.t0) * (WIDTH - LEFT - RIGHT)

    def y(self, v: float) -> float:
        return self.bottom - (v - self.lo) / (self.hi - self.lo) * (self.bottom - TOP)

    def y_array(self, v: np.ndarray) -> np.ndarray:
        return self.bottom - (v - self.lo) / (self.hi - self.lo) * (self.bottom - TOP)

    def axes(self, percent: bool = False) -> str:
        """Horizontal grid lines with value labels, and six date labels below."""
        parts = []
        scale = 100.0 if percent else 1.0
        ticks, decimals = nice_ticks(self.lo * scale, self.hi * scale)
        for v in ticks:
            y = self.y(v / scale)
            text = f"{v:,.{decimals}f}" + ("%" if percent else "")
            parts.append(f'<path class="g" d="M{LEFT} {y:.1f}H{WIDTH - RIGHT}"/>')
            parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
        span = self.t1 - self.t0
        short = span < 3 * 86_400 * 10**9
        for i in range(6):
            t = self.t0 + span * i // 5
            stamp = pd.Timestamp(t, unit="ns", tz="UTC")
            text = stamp.strftime("%m-%d %H:%M" if short else "%Y-%m-%d")
            anchor = "start" if i == 0 else "end" if i == 5 else "middle"
            parts.append(
                f'<text x="{self.x(t):.1f}" y="{self.height - 6}" text-anchor="{anchor}">'
                f"{text}</text>"
            )
        return "".join(parts)


def _svg(height: int, body: str, label: str) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}">{body}</svg>'
    )


def _nanos(index: pd.Index) -> np.ndarray:
    return pd.DatetimeIndex(index).as_unit("ns").asi8


def _median_step(times: np.ndarray) -> int:
    """`int(np.median(np.diff(times)))` without sorting: when more than half the steps are
    one value (candles are evenly spaced but for a few gaps) the median is that value."""
    steps = np.diff(times)
    usual = steps[len(steps) // 2]
    if 2 * int(np.count_nonzero(steps == usual)) > len(steps):
        return int(usual)
    return int(np.median(steps))


def line_chart(
    series: pd.Series, *, title: str, percent: bool = False, how: str = "last", area: bool = False
) -> str:
    """A line (or an area down from zero, for drawdowns) over time."""
    if len(series) == 0:
        return '<p class="none">no data</p>'
    points = downsample_line(series, how)
    times, values = _nanos(points.index), points.to_numpy(np.float64)
    lo, hi = float(values.min()), float(values.max())
    if area:
        hi = max(hi, 0.0)
    frame = Frame(int(times[0]), int(times[-1]), lo, hi, 260)
    path = "".join(
        f"{'M' if i == 0 else 'L'}{frame.x(t):.1f} {frame.y(v):.1f}"
        for i, (t, v) in enumerate(zip(times, values, strict=True))
    )
    body = frame.axes(percent)
    if area:
        zero = frame.y(0.0)
        body += (
            f'<path class="area" d="{path}L{frame.x(times[-1]):.1f} {zero:.1f}'
            f'L{frame.x(times[0]):.1f} {zero:.1f}z"/>'
        )
    else:
        body += f'<path class="line" d="{path}"/>'
    return _svg(260, body, title)


def _candle_paths(bars: pd.DataFrame, frame: Frame, step: int) -> str:
    """Four paths: wicks and bodies of rising and of falling bars. A body is a vertical line
    as wide as the bar, which takes half the bytes of a rectangle."""
    x = (_nanos(bars.index) + step / 2 - frame.t0) / (frame.t1 - frame.t0)
    x = LEFT + x * (WIDTH - LEFT - RIGHT)
    o, h, lo, c = (bars[col].to_numpy(np.float64) for col in ("open", "high", "low", "close"))
    y = {name: frame.y_array(v) for name, v in (("o", o), ("h", h), ("l", lo), ("c", c))}
    top, base = np.minimum(y["o"], y["c"]), np.maximum(y["o"], y["c"])
    width = max(0.2, (frame.x(step) - frame.x(0)) * 0.7)
    parts = []
    for color, chosen in ((UP, c >= o), (DOWN, c < o)):
        picks = np.flatnonzero(chosen)
        wicks = "".join(f"M{x[i]:.1f} {y['h'][i]:.1f}V{y['l'][i]:.1f}" for i in picks)
        bodies = "".join(f"M{x[i]:.1f} {top[i]:.1f}V{base[i] + 0.1:.1f}" for i in picks)
        parts.append(f'<path stroke="{color}" d="{wicks}"/>')
        parts.append(f'<path stroke="{color}" stroke-width="{width:.2f}" d="{bodies}"/>')
    return "".join(parts)


class Bars:
    """Where each thinned bar's low and high are drawn, to set marks just outside them."""

    def __init__(self, times: np.ndarray, bars: pd.DataFrame, frame: Frame) -> None:
        self.times = times
        self.low = frame.y_array(bars["low"].to_numpy(np.float64))  # y grows downwards
        self.high = frame.y_array(bars["high"].to_numpy(np.float64))
        self.top, self.bottom = TOP, frame.bottom

    def below(self, t: int, gap: float) -> float:
        """Just under the low of the bar holding time `t`."""
        return min(self.bottom, float(self.low[self._bar(t)]) + gap)

    def above(self, t: int, gap: float) -> float:
        """Just over the high of the bar holding time `t`."""
        return max(self.top, float(self.high[self._bar(t)]) - gap)

    def _bar(self, t: int) -> int:
        at = int(np.searchsorted(self.times, t, side="right")) - 1
        return min(max(at, 0), len(self.times) - 1)


def _trade_marks(
    trade: Trade, frame: Frame, bars: Bars, describe: Callable[[Trade], str], half: int
) -> str:
    """Entry triangle (up for long, under the bar; down for short, over the bar) and a
    circle per closing fill on the other side of its bar: marks sit beside the candles,
    never on the prices. Hover shows the trade, prices included.

    Fill times are candle open times; `half` a candle later is the middle of that candle.
    """
    color = WIN if trade.is_winner else LOSS
    long = trade.side == "long"
    entry = int(pd.Timestamp(trade.entry_time).value)
    ex = frame.x(entry + half)
    if long:  # the apex touches the gap under the bar, the base 7 px lower
        ey, d = bars.below(entry, 3), 7
    else:
        ey, d = bars.above(entry, 3), -7
    parts = [
        f'<g class="t" fill="{color}" stroke="{color}"><title>{escape(describe(trade))}</title>',
        f'<path d="M{ex:.1f} {ey:.1f}l-5 {d}h10z"/>',
    ]
    for fill in trade.fills:
        if fill.reason != "entry":
            at = int(pd.Timestamp(fill.time).value)
            fy = bars.above(at, 7) if long else bars.below(at, 7)
            parts.append(f'<circle cx="{frame.x(at + half):.1f}" cy="{fy:.1f}" r="4"/>')
    parts.append("</g>")
    return "".join(parts)


def _trade_band(
    trades: Sequence[Trade], profits: Sequence[float], frame: Frame, times: np.ndarray, step: int
) -> str:
    """Many trades: one tick per bar in a band under the candles, green where the trades
    entered in that bar made money together, red where they lost; darker for more trades."""
    entries = np.array([pd.Timestamp(t.entry_time).value for t in trades], dtype=np.int64)
    bar = np.clip(np.searchsorted(times, entries, side="right") - 1, 0, len(times) - 1)
    profit = np.zeros(len(times))
    count = np.zeros(len(times), dtype=np.int64)
    np.add.at(profit, bar, profits)
    np.add.at(count, bar, 1)
    width = max(0.6, frame.x(step) - frame.x(0))
    top, bottom = frame.bottom + 3, frame.bottom + BAND - 1
    most = int(count.max()) if len(count) else 1
    parts = [f"<title>{len(trades)} trades, counted by the bar they entered in</title>"]
    for color, chosen in ((WIN, profit >= 0), (LOSS, profit < 0)):
        for shade in (1, 2, 3):  # three shades, by how many trades entered in the bar
            lo, hi = (shade - 1) * most / 3, shade * most / 3
            picks = np.flatnonzero(chosen & (count > lo) & (count <= hi))
            if not len(picks):
                continue
            x = [frame.x(int(times[i]) + step / 2) for i in picks]
            d = "".join(f"M{v:.1f} {top:.1f}V{bottom:.1f}" for v in x)
            parts.append(
                f'<path stroke="{color}" stroke-opacity="{0.3 * shade + 0.1:.1f}" '
                f'stroke-width="{width:.2f}" d="{d}"/>'
            )
    return f'<g class="band">{"".join(parts)}</g>'


def candle_chart(
    candles: pd.DataFrame,
    trades: Sequence[Trade],
    describe: Callable[[Trade], str],
    *,
    title: str,
    bars: int = MAX_BARS,
    profits: Sequence[float] | None = None,
) -> str:
    """A pair's candles, thinned to `bars`, with every trade's entry and exits marked; more
    than MARKED_TRADES trades are counted in a band under the candles instead, so that on
    long runs the marks neither cover the prices nor swell the page."""
    if len(candles) == 0:
        return '<p class="none">no candles</p>'
    thinned = downsample_ohlc(candles, bars)
    times = _nanos(thinned.index)
    raw = _nanos(candles.index)
    candle_step = _median_step(raw) if len(raw) > 1 else 60 * 10**9
    step = candle_step * bucket_size(len(candles), bars)
    banded = len(trades) > MARKED_TRADES
    lo, hi = float(thinned["low"].min()), float(thinned["high"].max())
    band = BAND if banded else 0
    # marks sit outside their bars: room for them over the highest and under the lowest
    room = 0 if banded else MARK_ROOM
    frame = Frame(int(times[0]), int(raw[-1]) + candle_step, lo, hi, 320 + band, band, room)
    body = frame.axes() + _candle_paths(thinned, frame, step)
    if banded:
        made = [t.profit for t in trades] if profits is None else profits
        body += _trade_band(trades, made, frame, times, step)
    else:
        sides = Bars(times, thinned, frame)
        body += "".join(_trade_marks(t, frame, sides, describe, candle_step // 2) for t in trades)
    return _svg(320 + band, body, title)
