"""The shape of a strategy file, as pydantic models.

Structure only: every expression is kept as text here and parsed by the language
stage, which finds its file position through the loader's position table. The
JSON Schema in schemas/strategy.schema.json is generated from these models, so
the `description` of each field is also what an editor shows on hover.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kinetic_rules.spec.predictors import Models
from kinetic_rules.spec.types import (
    Condition,
    Duration,
    Fraction,
    MonitorEvery,
    Name,
    Timeframe,
    Value,
)

# Upper bounds that keep every count a file may set within what the engine can hold.
MAX_TRADES = 10_000
MAX_HISTORY = 100_000


class Section(BaseModel):
    # NaN and infinities are refused in every number a file gives (`.nan`, `.inf`, 1e309).
    # defer_build: a section's validator is built when first used, not at import; loading
    # a file builds the Strategy's once, sections inlined, instead of one per class.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


class Metadata(Section):
    name: str = Field(description="A short name for the strategy, shown in reports.")
    description: str = Field("", description="What the strategy does, in a sentence or two.")
    version: str = Field("1", description="Your version of this file.")
    author: str = Field("", description="Who maintains this strategy.")


class Market(Section):
    exchange: str = Field("binance", description="ccxt exchange id, e.g. binance, kraken.")
    type: Literal["spot", "futures"] = Field("spot", description="Spot or futures trading.")
    stake_currency: str = Field("USDT", description="The currency stakes are paid in.")
    pairs: list[str] = Field(
        default_factory=list,
        description="Pairs to trade when there is no scanner (a static whitelist), e.g. BTC/USDT.",
    )
    rate_limit_ms: int = Field(
        200,
        ge=0,
        le=600_000,
        description="Least milliseconds between two requests to the exchange.",
    )
    maintenance_margin: Fraction = Field(
        0.005,
        ge=0,
        lt=1,
        description="Futures: the maintenance margin rate of the exchange, e.g. 0.5%. With "
        "isolated margin, a trade is liquidated when its margin falls to this share of its "
        "value (docs/backtesting.md, Margin and liquidation).",
    )
    margin_mode: Literal["isolated", "cross"] = Field(
        "isolated",
        description="Futures, live: the margin mode set on each symbol before its first order "
        "(isolated: a trade can lose its own margin only; docs/live.md).",
    )


ParamUnit = Literal["price", "ratio", "points", "percent", "count", "volume", "money", "number"]


class Param(Section):
    value: float | int | bool | str = Field(description="The value used unless overridden.")
    min: float | None = Field(None, description="Smallest allowed value (inclusive).")
    max: float | None = Field(None, description="Largest allowed value (inclusive).")
    step: float | None = Field(
        None,
        gt=0,
        description="Optional: the spacing of the values `optimize` and `walkforward` try, "
        "from min up to max (an integer param's step is whole). Needs min and max.",
    )
    choices: list[str] | None = Field(None, description="Allowed values for a word param.")
    doc: str = Field("", description="What this knob does, for the people who turn it.")
    unit: ParamUnit | None = Field(
        None,
        description="What the value is measured in: price (quote currency per unit), ratio "
        "(2.5% is 0.025), points (a 0–100 scale such as RSI), percent (percent points, 5 "
        "means 5%, as roc gives), count (candles or trades), volume (base asset), money "
        "(quote currency) or number (plain). Left out, it is taken from how the value is "
        "written (2% is a ratio) or from what the param is compared with; `--set` is "
        "checked against it. See docs/language.md, Units.",
    )

    @model_validator(mode="after")
    def _step_fits(self) -> Param:
        if self.step is None:
            return self
        if self.min is None or self.max is None:
            raise ValueError("a param with a `step` needs `min` and `max`")
        whole = isinstance(self.value, int) and not isinstance(self.value, bool)
        if whole and not float(self.step).is_integer():
            raise ValueError("the step of a whole-number param is a whole number")
        count = (self.max - self.min) / self.step
        if abs(count - round(count)) > 1e-9 * max(1.0, abs(count)):
            raise ValueError(
                f"step {self.step:g} does not divide the range {self.min:g}..{self.max:g} "
                "into whole steps"
            )
        return self


class Informative(Section):
    timeframes: list[Timeframe] = Field(
        default_factory=list, description="Other timeframes the rules may read with @."
    )
    pairs: list[str] = Field(
        default_factory=list, description="Other pairs the rules may read with [PAIR]."
    )


class ScannerStep(Section):
    name: str = Field("", description="A label for reports.")
    top: int | None = Field(
        None, ge=1, le=MAX_TRADES, description="Keep this many pairs, ranked by `by`."
    )
    by: Value | None = Field(None, description="What `top` ranks by, highest first.")
    filter: Condition | None = Field(None, description="Keep only pairs where this holds.")

    @model_validator(mode="after")
    def _one_kind(self) -> ScannerStep:
        if (self.top is None) == (self.filter is None):
            raise ValueError("a scanner step has either `top` (with `by`) or `filter`")
        if self.top is not None and self.by is None:
            raise ValueError("`top` needs `by`: what to rank pairs by")
        if self.filter is not None and self.by is not None:
            raise ValueError("`by` goes with `top`, not with `filter`")
        return self


class Scanner(Section):
    refresh: Duration = Field(description="How often the pair list is rebuilt, e.g. 30m.")
    universe: list[str] = Field(
        default_factory=list,
        description="Pairs to scan; empty means every pair with data (backtest) or every "
        "active market quoted in the stake currency (live).",
    )
    blacklist: list[str] = Field(
        default_factory=list,
        description="Regular expressions; a pair matching any of them is never traded.",
    )
    steps: list[ScannerStep] = Field(description="Applied in order, from all pairs to a shortlist.")


class Regime(Section):
    classes: dict[Name, Condition] = Field(
        description="Market states in order; the first whose condition holds is the regime. "
        "The last may be `otherwise`."
    )
    max_open_trades: dict[Name, Annotated[int, Field(ge=0, le=MAX_TRADES)]] = Field(
        default_factory=dict, description="Most open trades allowed in each regime."
    )
    tables: dict[Name, dict[Name, float]] = Field(
        default_factory=dict,
        description="Named numbers per regime, usable in expressions, e.g. a stop multiplier.",
    )


class Protection(Section):
    active: Condition = Field(
        description="When this holds, the protection is in force. It may read portfolio "
        "values (open_profit_ratio, today_lowest_profit_ratio, …)."
    )
    max_open_trades: int | None = Field(
        None, ge=0, le=MAX_TRADES, description="Trade limit while in force."
    )
    block_entries: bool = Field(False, description="No new trades while in force.")
    close_all: bool = Field(
        False,
        description="Close every open trade when it comes into force; if `active` reads "
        "portfolio values, at every close where it holds.",
    )
    doc: str = Field("", description="Why this protection exists.")


class Cooldown(Section):
    pair: Duration | None = Field(
        None, description="After a trade on a pair closes, wait this long before re-entering it."
    )
    tag: Duration | None = Field(
        None,
        description="After a trade on a pair closes, wait this long before another trade "
        "carrying one of its tags enters that pair.",
    )


def _cooldown_schema(schema: dict[str, Any]) -> None:
    duration = Cooldown.model_json_schema()["properties"]["pair"]["anyOf"][0]
    schema["anyOf"].insert(0, duration)


class Entry(Section):
    long: dict[Name, Condition] = Field(
        default_factory=dict, description="Named conditions that must all hold to open a long."
    )
    short: dict[Name, Condition] = Field(
        default_factory=dict, description="Named conditions that must all hold to open a short."
    )
    priority: Value | None = Field(
        None,
        description="When more pairs signal than slots are free, higher priority enters first "
        "(ties: pair name order).",
    )
    tags: dict[Name, Condition] = Field(
        default_factory=dict,
        description="Named conditions; a trade carries the name of each one that holds at its "
        "signal candle (which setups opened it).",
    )
    cooldown: Cooldown | None = Field(
        None,
        description="A duration (e.g. 30m): after a trade on a pair closes, wait this long "
        "before re-entering it. Or `{pair: 30m, tag: 2h}` to also wait per tag.",
        json_schema_extra=_cooldown_schema,
    )

    @field_validator("cooldown", mode="before")
    @classmethod
    def _short_cooldown(cls, value: Any) -> Any:
        """`cooldown: 30m` is the short form of `cooldown: {pair: 30m}`."""
        return value if value is None or isinstance(value, dict | Cooldown) else {"pair": value}


class Exit(Section):
    long: dict[Name, Condition] = Field(
        default_factory=dict, description="Named conditions; any one of them closes a long."
    )
    short: dict[Name, Condition] = Field(
        default_factory=dict, description="Named conditions; any one of them closes a short."
    )


class StopRule(Section):
    activate: Condition = Field(description="From the first closed candle where this holds …")
    level: Value = Field(
        description="… the stop follows this price, never loosening. Its unit must be a "
        "price, e.g. close - 1.5 * atr(14)."
    )


class Stoploss(Section):
    initial: Value = Field(
        description="Stop price when the trade opens. Its unit must be a price, e.g. "
        "entry_price - 2 * atr(14), or entry_price * (1 - 3%) for 3% below the entry."
    )
    max_distance: Fraction | None = Field(
        None, description="The stop is never further than this from the entry price, e.g. 3%."
    )
    trailing: dict[Name, StopRule] = Field(
        default_factory=dict, description="Named rules that move the stop as the trade goes on."
    )


class TakeProfit(Section):
    when: Condition = Field(description="Take profit on the first closed candle where this holds.")
    close: Fraction = Field(description="Share of the original position to close, e.g. 40%.")


class Kelly(Section):
    lookback: int = Field(
        20, ge=1, le=MAX_HISTORY, description="The most recent closed trades that count."
    )
    min_trades: int = Field(
        10,
        ge=1,
        le=MAX_HISTORY,
        description="Fewer closed trades than this: use `default` (or, with `stake`, no cap).",
    )
    reward_risk: float = Field(
        2.0, gt=0, le=1e6, description="Average win divided by average loss."
    )
    default: Fraction = Field(0.01, description="Stake while history is too short.")
    clamp: tuple[Fraction, Fraction] = Field(
        (0.005, 0.05), description="Least and most stake, as fractions of equity."
    )
    per: Literal["pair", "strategy"] = Field(
        "pair",
        description="Whose closed trades count: the pair's own (pair) or every trade of the "
        "strategy, all pairs together (strategy).",
    )


class Sizing(Section):
    kelly: Kelly | None = Field(
        None,
        description="Kelly-criterion stake from closed trades; with `stake`, a cap on it once "
        "`min_trades` trades have closed and the Kelly fraction is above 0.",
    )
    stake: Value | None = Field(
        None,
        description="Stake as a fraction of equity (expression). Its unit must be a ratio, "
        "e.g. 2% or min(1% / ((entry_price - stop) / entry_price), 20%).",
    )
    max_stake: Fraction | None = Field(None, description="Never stake more than this of equity.")

    @model_validator(mode="after")
    def _one_method(self) -> Sizing:
        if self.kelly is None and self.stake is None:
            raise ValueError("sizing needs `stake`, `kelly`, or both (Kelly then caps the stake)")
        if self.kelly is not None and self.stake is not None:
            unused = sorted({"default", "clamp"} & self.kelly.model_fields_set)
            if unused:
                raise ValueError(
                    f"with `stake`, Kelly only caps the stake: {' and '.join(unused)} "
                    "would do nothing here; remove them"
                )
        return self


class Timeouts(Section):
    entry: Duration = Field(600, description="Cancel an unfilled entry order after this long.")
    exit: Duration = Field(1800, description="Cancel an unfilled exit order after this long.")


OrderType = Literal["limit", "market"]


class Orders(Section):
    entry: OrderType = Field("limit", description="Order type for entries.")
    exit: OrderType = Field("limit", description="Order type for signal exits.")
    emergency_exit: OrderType = Field("market", description="Order type for emergency exits.")
    stoploss: OrderType = Field("market", description="Order type when a stop triggers.")
    stoploss_on_exchange: bool = Field(
        True, description="Keep the stop as an order on the exchange, safe if the bot dies."
    )
    stop_trigger: Literal["mark", "contract"] = Field(
        "mark",
        description="Futures, live: the price that triggers a stop resting on the exchange, the "
        "mark price (as liquidations) or the last trade price of the contract.",
    )
    timeouts: Timeouts = Field(default_factory=Timeouts)
    monitor_every: MonitorEvery = Field(
        5,
        description="Paper and live: how often open positions are checked between candle "
        "closes for close-all protections, stops the bot holds, and liquidations (futures: "
        "on the mark price); off checks at closes only. `run --monitor-every` overrides it. "
        "See docs/live.md.",
    )


class Portfolio(Section):
    max_open_trades: int = Field(1, ge=0, le=MAX_TRADES, description="Most trades open at once.")
    max_per_pair: int = Field(1, ge=1, le=1, description="Trades per pair (one at a time).")


class Backtest(Section):
    starting_balance: float = Field(10_000.0, gt=0, le=1e15, description="Equity at the start.")
    fee: Fraction = Field(
        0.001, ge=0, lt=0.5, description="Fee per side (entry and exit), e.g. 0.1%."
    )
    slippage: Fraction = Field(
        0.0005, ge=0, lt=0.5, description="Price slippage per fill, e.g. 0.05%."
    )
    gaps: Literal["keep", "fill"] = Field(
        "keep",
        description="Missing candles in the data: keep the holes (a window of N candles then "
        "reaches back past them), or fill each with a no-trade candle at the previous close "
        "and zero volume, as freqtrade does. Replays and live sessions do the same. "
        "`backtest --gaps` overrides it.",
    )
    durations: Literal["time", "candles"] = Field(
        "time",
        description="Under `gaps: keep`, what a window written as a duration (`24h`) covers "
        "where candles are missing: that much time (missing candles left out of the window) "
        "or that many candles held, reaching back further across a gap.",
    )
    warmup: Duration | None = Field(
        None,
        description="Accept a shorter warm-up than the indicators need, e.g. 30d: trading "
        "may start this long after the data does. The report states how converged the "
        "slowest indicator is then. Default: the full warm-up.",
    )


class Ablation(Section):
    """What `kinetic-rules ablate` may switch off, beyond its default of every named part."""

    pinned: list[str] = Field(
        default_factory=list,
        description="Parts never switched off, by address: entry.long.NAME, exit.short.NAME, "
        "protections.NAME, take_profit.NAME, stoploss.trailing.NAME, entry.cooldown or sizing "
        "(docs/research.md, Ablation).",
    )
    groups: dict[Name, list[str]] = Field(
        default_factory=dict,
        description="Features made of several parts, switched off together as one row, e.g. "
        "volume_profile: [entry.long.near_poc, exit.long.lost_poc].",
    )


class Strategy(Section):
    """A whole strategy file."""

    schema_: str | None = Field(None, alias="$schema", description="Editor schema location.")
    metadata: Metadata
    market: Market = Field(default_factory=Market)
    timeframe: Timeframe = Field(description="The base timeframe rules are decided on.")
    informative: Informative | None = None
    params: dict[Name, Param] = Field(default_factory=dict)
    indicators: dict[Name, Value] = Field(default_factory=dict)
    conditions: dict[Name, Condition] = Field(default_factory=dict)
    scanner: Scanner | None = None
    regime: Regime | None = None
    protections: dict[Name, Protection] = Field(default_factory=dict)
    portfolio: Portfolio = Field(default_factory=Portfolio)
    entry: Entry
    exit: Exit = Field(default_factory=Exit)
    stoploss: Stoploss | None = None
    take_profit: dict[Name, TakeProfit] = Field(default_factory=dict)
    sizing: Sizing = Field(default_factory=lambda: Sizing(stake="0.01"))
    leverage: Value | None = Field(None, description="Leverage per trade (futures); default 1.")
    orders: Orders = Field(default_factory=Orders)
    backtest: Backtest = Field(default_factory=Backtest)
    ablation: Ablation = Field(default_factory=Ablation)
    models: Models = Field(
        default_factory=dict,
        description="Learned predictors rules read with predict(name) and "
        "model_accuracy(name, n), trained point in time (docs/models.md).",
    )

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        allow_inf_nan=False,
        defer_build=True,
    )

    @field_validator("entry")
    @classmethod
    def _some_entry(cls, entry: Entry) -> Entry:
        if not entry.long and not entry.short:
            raise ValueError("entry needs `long` or `short` conditions")
        return entry
