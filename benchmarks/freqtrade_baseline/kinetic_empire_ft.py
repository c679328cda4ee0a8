"""Kinetic Empire (strategies/kinetic_empire.yaml) written as a freqtrade strategy, the
way a freqtrade user would: the baseline that benchmarks/bench_strategies.py --freqtrade
runs. It is loaded by freqtrade from a scratch user_data folder, inside freqtrade's own
virtual environment, never by kinetic-rules.

The rules are the YAML's, on the strategy's timeframe (15m in the benchmark); the knobs
(params, fee, slots, Kelly, timeouts) come from the config the benchmark writes from the
YAML, under the key "kinetic_empire". kinetic-rules' execution model, as far as freqtrade
lets a strategy express it:
- entries are limit orders at the signal candle's close (or the next open, if lower),
  cancelled after `orders.timeouts.entry`;
- signal exits are limit orders at the signal close (or the open, if higher); after
  `orders.timeouts.exit` the order is replaced at that candle's open, at market;
- the initial stop is `entry_price - stop_atr * atr(14)` of the signal candle; once a close
  is `trail_activation` above the entry, the stop follows `close - trail_atr * atr(14)`,
  moved after each close and never loosened;
- the scanner (blacklist, dust, 2–50% daily volatility, rising over 12 candles), rebuilt on
  its refresh schedule; the regime's trade limit (Bitcoin's daily close above its 50-day
  EMA: 20 trades, else 3); the flash-crash protection (a latch on Bitcoin, which blocks
  entries while on); entry priority by roc(close, 12) when slots are scarce;
- Kelly sizing on each pair's own closed trades known at the decision.
What freqtrade decides itself stays freqtrade's: a limit fills when a candle touches it
(kinetic-rules: trades through it), stops are rounded up to the price step it infers from
the candles, a signal exit is placed before the stop is checked, no slippage. The
benchmark counts how many trades the two runs share.
Only the callbacks the rules need are overridden: freqtrade deep-copies the trade for
every call of an overridden callback, so an unneeded one would slow the baseline down.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import talib
from freqtrade.persistence import LocalTrade, Order, Trade
from freqtrade.strategy import IStrategy, merge_informative_pair, stoploss_from_absolute
from pandas import DataFrame

BTC = "BTC/USDT"


def latch(set_: np.ndarray, reset: np.ndarray) -> np.ndarray:
    """A switch: on when `set_` holds, off when `reset` holds; both at once flips it."""
    out = np.zeros(len(set_), dtype=bool)
    on = False
    for i in range(len(set_)):
        s, r = set_[i], reset[i]
        if s and r:
            on = not on
        elif s:
            on = True
        elif r:
            on = False
        out[i] = on
    return out


def kelly_fraction(profits: list[float], knobs: dict[str, Any]) -> float:
    """The stake fraction from the pair's closed trades, oldest first."""
    if len(profits) < knobs["min_trades"]:
        return float(knobs["default"])
    recent = profits[-knobs["lookback"] :]
    rate = sum(p > 0 for p in recent) / len(recent)
    full = rate - (1.0 - rate) / knobs["reward_risk"]
    least, most = knobs["clamp"]
    return float(min(max(full, least), most))


class KineticEmpire(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "15m"
    can_short = False
    minimal_roi: ClassVar[dict[str, float]] = {"0": 100.0}  # no ROI exits: the YAML has none
    stoploss = -0.99  # the real stop is custom_stoploss
    use_custom_stoploss = True
    trailing_stop = False
    use_exit_signal = True
    exit_profit_only = False
    ignore_roi_if_entry_signal = False
    process_only_new_candles = True
    startup_candle_count = 400
    order_types: ClassVar[dict[str, Any]] = {
        "entry": "limit",
        "exit": "limit",
        "emergency_exit": "market",
        "force_exit": "market",
        "stoploss": "market",
        "stoploss_on_exchange": False,
    }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.knobs: dict[str, Any] = config["kinetic_empire"]
        self.timeframe = self.knobs["timeframe"]
        self.candle = timedelta(seconds=self.knobs["candle_seconds"])
        self.startup_candle_count = int(config.get("startup_candle_count", 400))
        self.arrays: dict[str, dict[str, np.ndarray]] = {}
        self.rows: dict[str, dict[int, int]] = {}  # pair -> candle open (epoch s) -> index
        self.context: DataFrame | None = None
        self.ranking: dict[int, list[tuple[float, str]]] | None = None
        self.stops: dict[int, list[float]] = {}  # trade id -> [stop, active, last close seen]
        # Closed trades in the order they closed, and how many of them were known at the
        # last decision: the equity and each pair's record grow as trades become known.
        self.closed_seen = 0
        self.closed: list[tuple[datetime, str, float]] = []  # close date, pair, profit
        self.settled = 0
        self.realized = 0.0
        self.records: dict[str, list[float]] = {}

    # -- candles ---------------------------------------------------------------------------
    def informative_pairs(self) -> list[tuple[str, str]]:
        pairs = self.dp.current_whitelist() if self.dp else []
        wanted = {(p, tf) for p in [*pairs, BTC] for tf in ("1h", "1d")}
        return sorted(wanted | {(BTC, self.timeframe)})

    def market_context(self) -> DataFrame:
        """Bitcoin's regime (trade limit) and the flash-crash latch, per base candle."""
        if self.context is not None:
            return self.context
        k = self.knobs
        base = self.dp.get_pair_dataframe(BTC, self.timeframe)
        hour = self.dp.get_pair_dataframe(BTC, "1h")
        day = self.dp.get_pair_dataframe(BTC, "1d")
        per_hour = k["hour_candles"]
        crash = base["low"] / base["high"].rolling(per_hour).max() - 1 < -k["crash_drop"]
        above = pd.Series(hour["close"].to_numpy() > talib.EMA(hour["close"].to_numpy(), 50))
        stable = DataFrame({"date": hour["date"], "stable": above.rolling(4).sum() == 4})
        bull = day["close"].to_numpy() > talib.EMA(day["close"].to_numpy(), 50)
        regime = DataFrame({"date": day["date"], "bull": bull})
        frame = DataFrame({"date": base["date"], "crash": crash})
        frame = merge_informative_pair(frame, stable, self.timeframe, "1h", ffill=True)
        frame = merge_informative_pair(frame, regime, self.timeframe, "1d", ffill=True)
        stable_now = frame["stable_1h"].fillna(False).astype(bool).to_numpy()
        blocked = latch(frame["crash"].to_numpy(dtype=bool), stable_now)
        bull_now = frame["bull_1d"].fillna(False).astype(bool).to_numpy()
        self.context = DataFrame(
            {
                "date": frame["date"],
                "slots": np.where(bull_now, k["slots_bull"], k["slots_bear"]),
                "blocked": blocked,
            }
        )
        return self.context

    def populate_indicators(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        k = self.knobs
        pair = metadata["pair"]
        close = dataframe["close"].to_numpy()
        high, low = dataframe["high"].to_numpy(), dataframe["low"].to_numpy()
        dataframe["ema50"] = talib.EMA(close, 50)
        dataframe["vol_mean_24h"] = dataframe["volume"].rolling(k["day_candles"]).mean()
        dataframe["roc"] = talib.ROC(close, 12)
        dataframe["rsi"] = talib.RSI(close, 14)
        dataframe["atr"] = talib.ATR(high, low, close, 14)
        quote = (dataframe["volume"] * dataframe["close"]).rolling(k["day_candles"]).sum()

        hour = self.dp.get_pair_dataframe(pair, "1h")
        hourly = DataFrame(
            {"date": hour["date"], "close": hour["close"], "ema50": talib.EMA(hour["close"], 50)}
        )
        dataframe = merge_informative_pair(dataframe, hourly, self.timeframe, "1h", ffill=True)
        day = self.dp.get_pair_dataframe(pair, "1d")
        returns = day["close"].pct_change()
        daily = DataFrame({"date": day["date"], "volatility": talib.STDDEV(returns, 10, 1)})
        dataframe = merge_informative_pair(dataframe, daily, self.timeframe, "1d", ffill=True)
        dataframe = dataframe.merge(self.market_context(), on="date", how="left")

        # The scanner: its filters at each refresh close, held until the next refresh.
        volatility = dataframe["volatility_1d"]
        passing = (
            quote.notna()
            & (dataframe["close"] >= k["min_close"])
            & (volatility >= k["volatility_min"])
            & (volatility <= k["volatility_max"])
            & (dataframe["close"] > dataframe["close"].shift(12))
        )
        seconds = (dataframe["date"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        refresh = (seconds + k["candle_seconds"]) % k["scanner_refresh"] == 0
        dataframe["scanned"] = passing.where(refresh).ffill().fillna(False).astype(bool)
        dataframe["seconds"] = seconds
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        k = self.knobs
        dataframe["enter_long"] = (
            (dataframe["close_1h"] > dataframe["ema50_1h"])
            & (dataframe["close"] > dataframe["ema50"])
            & (dataframe["roc"] > k["roc_threshold"])
            & (dataframe["rsi"] > k["rsi_min"])
            & (dataframe["rsi"] < k["rsi_max"])
            & (dataframe["volume"] > dataframe["vol_mean_24h"])
            & dataframe["scanned"]
            & ~dataframe["blocked"].fillna(True).astype(bool)
        ).astype(int)
        self.arrays[metadata["pair"]] = {
            "seconds": dataframe["seconds"].to_numpy(dtype=np.int64),
            "close": dataframe["close"].to_numpy(dtype=np.float64),
            "atr": dataframe["atr"].to_numpy(dtype=np.float64),
            "roc": dataframe["roc"].to_numpy(dtype=np.float64),
            "enter": dataframe["enter_long"].to_numpy(dtype=bool),
            "slots": dataframe["slots"].fillna(0).to_numpy(dtype=np.int64),
        }
        self.rows[metadata["pair"]] = {
            int(t): i for i, t in enumerate(self.arrays[metadata["pair"]]["seconds"])
        }
        self.ranking = None
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        dataframe["exit_long"] = (
            (dataframe["close"] < dataframe["ema50"])
            & (dataframe["volume"] > dataframe["vol_mean_24h"])
        ).astype(int)
        return dataframe

    # -- lookups ---------------------------------------------------------------------------
    def row(self, pair: str, when: datetime) -> int:
        """The index of the candle that opened at `when` in the pair's analysed frame."""
        return self.rows[pair][int(when.timestamp())]

    def ranked(self, signal_seconds: int) -> list[tuple[float, str]]:
        """Pairs with an entry signal at a close, in priority order (-roc, pair)."""
        if self.ranking is None:
            table: dict[int, list[tuple[float, str]]] = {}
            for pair, a in self.arrays.items():
                for i in np.flatnonzero(a["enter"]):
                    table.setdefault(int(a["seconds"][i]), []).append((-float(a["roc"][i]), pair))
            for entries in table.values():
                entries.sort()
            self.ranking = table
        return self.ranking.get(signal_seconds, [])

    # -- entries ---------------------------------------------------------------------------
    def custom_entry_price(
        self,
        pair: str,
        trade: Trade | None,
        current_time: datetime,
        proposed_rate: float,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> float:
        signal = self.row(pair, current_time) - 1
        return min(proposed_rate, float(self.arrays[pair]["close"][signal]))

    def confirm_trade_entry(
        self,
        pair: str,
        order_type: str,
        amount: float,
        rate: float,
        time_in_force: str,
        current_time: datetime,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> bool:
        """The regime's trade limit, with higher-priority signals of the same close first."""
        signal = self.row(pair, current_time) - 1
        slots = int(self.arrays[pair]["slots"][signal])
        expired = current_time - timedelta(minutes=self.knobs["entry_timeout_minutes"])
        holding = [  # an entry order past its timeout is cancelled at this open
            t
            for t in Trade.get_open_trades()
            if t.nr_of_successful_entries > 0
            or any(o.ft_is_open and o.order_date_utc > expired for o in t.orders)
        ]
        busy = {t.pair for t in holding}
        mine = -float(self.arrays[pair]["roc"][signal])
        ahead = sum(
            1
            for key in self.ranked(int(self.arrays[pair]["seconds"][signal]))
            if key < (mine, pair) and key[1] not in busy
        )
        return len(holding) + ahead < slots

    def custom_stake_amount(
        self,
        pair: str,
        current_time: datetime,
        current_rate: float,
        proposed_stake: float,
        min_stake: float | None,
        max_stake: float,
        leverage: float,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> float:
        """Kelly on the pair's closed trades whose profit was known at the signal close."""
        known_by = current_time - self.candle
        done = LocalTrade.bt_trades  # closed trades, in the order they closed
        for trade in done[self.closed_seen :]:
            self.closed.append((trade.close_date_utc, trade.pair, float(trade.close_profit_abs)))
        self.closed_seen = len(done)
        while self.settled < len(self.closed) and self.closed[self.settled][0] <= known_by:
            _, closed_pair, profit = self.closed[self.settled]
            self.realized += profit
            self.records.setdefault(closed_pair, []).append(profit)
            self.settled += 1
        equity = self.knobs["starting_balance"] + self.realized
        fraction = kelly_fraction(self.records.get(pair, []), self.knobs["kelly"])
        return min(fraction * equity, max_stake)

    # -- stops and exits -------------------------------------------------------------------
    def custom_stoploss(
        self,
        pair: str,
        trade: Trade,
        current_time: datetime,
        current_rate: float,
        current_profit: float,
        after_fill: bool,
        **kwargs: Any,
    ) -> float | None:
        """The ATR stop, then the ATR trail once a close is far enough in profit."""
        a = self.arrays[pair]
        k = self.knobs
        state = self.stops.get(trade.id)
        entry = self.row(pair, trade.open_date_utc)
        if state is None:
            signal = entry - 1
            initial = trade.open_rate - k["stop_atr"] * float(a["atr"][signal])
            state = self.stops[trade.id] = [initial, 0.0, float(entry - 1)]
        last_close = self.row(pair, current_time) - 1  # the closes known now
        for c in range(int(state[2]) + 1, last_close + 1):
            close = float(a["close"][c])
            if close / trade.open_rate - 1.0 > k["trail_activation"]:
                state[1] = 1.0
            if state[1]:
                level = close - k["trail_atr"] * float(a["atr"][c])
                if not np.isnan(level):
                    state[0] = max(state[0], level)
        state[2] = float(max(state[2], last_close))
        return max(stoploss_from_absolute(state[0], current_rate, is_short=False), 1e-9)

    def adjust_exit_price(
        self,
        trade: Trade,
        order: Order | None,
        pair: str,
        current_time: datetime,
        proposed_rate: float,
        current_order_rate: float,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> float | None:
        """A limit exit not filled within the timeout is replaced at this open: at market."""
        assert order is not None
        waited = current_time - order.order_date_utc
        if waited >= timedelta(minutes=self.knobs["exit_timeout_minutes"]):
            return proposed_rate
        return current_order_rate

    def custom_exit_price(
        self,
        pair: str,
        trade: Trade,
        current_time: datetime,
        proposed_rate: float,
        current_profit: float,
        exit_tag: str | None,
        **kwargs: Any,
    ) -> float:
        pending = trade.select_order(trade.exit_side, is_open=True)
        if pending is not None:  # a limit exit is working: keep it
            return float(pending.ft_price)
        signal = self.row(pair, current_time) - 1
        return max(proposed_rate, float(self.arrays[pair]["close"][signal]))
