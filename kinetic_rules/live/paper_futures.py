"""Paper trading on futures markets: the paper broker's fills on the contract's live order
book, with a simulated margin account (paper_margin.py) in place of spot balances.

What the live executor asks of a futures account works here as on the exchange, so the
executor runs unchanged: leverage and margin mode set per symbol before an opening
order; long and short positions (one-way mode); reduce-only closing orders; the stop
resting as a reduce-only stop-market order triggered on the mark price (or on the
contract's last price, by `orders.stop_trigger`); "Margin is insufficient." answered by
one more try at half the size; positions, leverage and margin read back (`positions`),
and the funding paid (`funding`), for a restart to reconcile.

The mark price, the funding rate and the next funding time come from the exchange's
premium index (ccxt's `fetch_funding_rate`, one request per symbol), looked at no more
often than the order book. Once a funding time has passed, the rates the exchange
settled are read from its funding history (`fetch_funding_rate_history`) and charged on
the position as the broker finds it at that look. Liquidations and triggers are checked
at each look too: the mark price between two looks is not seen.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from kinetic_rules.errors import ExchangeError
from kinetic_rules.live.broker import ExchangeLiquidation, ExchangePosition, OrderRequest
from kinetic_rules.live.futures import INSUFFICIENT_MARGIN_CUT, FuturesSettings
from kinetic_rules.live.paper_account import PaperOrder
from kinetic_rules.live.paper_broker import MARKET_CLOSED, PaperBroker, _check_prices
from kinetic_rules.live.paper_fills import EPSILON, Level, stop_triggered
from kinetic_rules.live.paper_margin import MarginAccount, margin_mode_change
from kinetic_rules.margin import beyond_liquidation

log = logging.getLogger(__name__)


class PaperFuturesBroker(PaperBroker):
    """A simulated USDⓈ-M style margin account on an exchange's live futures market data.

    `balance` is the wallet at the start, in the settlement (stake) currency; `settings`
    are the strategy's margin mode and stop trigger; `maintenance` its maintenance
    margin rate (market.maintenance_margin), which sets the liquidation prices. The other
    arguments are PaperBroker's.
    """

    account: MarginAccount  # type: ignore[assignment]
    reduce_only_exempt = True  # Binance takes reduce-only orders below the minimum value
    insufficient_cut = INSUFFICIENT_MARGIN_CUT  # seed 001: half the size, once

    def __init__(
        self,
        exchange: Any,
        *,
        settings: FuturesSettings | None = None,
        maintenance: float = 0.005,
        **kwargs: Any,
    ) -> None:
        self.settings = settings or FuturesSettings()
        self.maintenance = maintenance
        self._premium_at: dict[str, pd.Timestamp] = {}
        super().__init__(exchange, **kwargs)

    def _opened(self, balance: float, assets: Mapping[str, float]) -> Any:
        mode = self.settings.margin_mode
        return MarginAccount(balance, self.fills.fee, self.maintenance, mode)

    def _restored(self, saved: str) -> Any:
        return MarginAccount.load(saved, self.fills.fee, self.maintenance)

    def __repr__(self) -> str:
        return f"PaperFuturesBroker({self.exchange.id!r}, stake_currency={self.stake_currency!r})"

    # -- the Broker protocol -------------------------------------------------------------

    def free_balance(self, currency: str) -> float:
        with self._lock:
            self.poll()
            return self.account.available() if currency == self.stake_currency else 0.0

    def total_balance(self, currency: str) -> float:
        """The wallet (the exchange's "wallet balance": unrealized profit not included)."""
        with self._lock:
            self.poll()
            return self.account.wallet if currency == self.stake_currency else 0.0

    def positions(self) -> list[ExchangePosition] | None:
        with self._lock:
            self.poll()
            found = []
            for pair in self.account.held_pairs():
                position, account = self.account.position(pair), self.account
                tick = (self._market(pair).get("precision") or {}).get("price")
                held = ExchangePosition(
                    pair, "long" if position.amount > 0 else "short", abs(position.amount),
                    position.entry, float(account.leverage_of(pair)), account.mode(pair),
                    account.liquidation_price(pair), float(tick) if tick else None,
                )  # fmt: skip
                found.append(held)
            return found

    def funding(
        self, pair: str, since: pd.Timestamp, until: pd.Timestamp | None = None
    ) -> float | None:
        """Funding paid (+) or received (−) on `pair` at the funding times in [since, until]."""
        with self._lock:
            self.poll(pair)
            end = None if until is None else _ms(until)
            return self.account.funding_paid(pair, _ms(since), end)

    def liquidation(self, pair: str, since: pd.Timestamp) -> ExchangeLiquidation | None:
        with self._lock:
            self.poll(pair)
            start = _ms(since)
            found = [x for x in self.account.liquidations if x.pair == pair and x.time >= start]
            if not found:
                return None
            last = found[-1]
            when = pd.Timestamp(last.time, unit="ms", tz="UTC")
            return ExchangeLiquidation(pair, when, last.price, abs(last.amount), last.lost)

    def poll(self, pair: str | None = None) -> list[Any]:
        """Funding due, liquidations, then the resting orders, on one look at the market."""
        with self._lock:
            pairs = [pair] if pair is not None else self._watched()
            changed = False
            for each in pairs:
                changed |= self._look_at_position(each, stops_first=True)
            states = super().poll(pair)
            for each in pairs:
                changed |= self._look_at_position(each, stops_first=False)
            if changed:
                self._save()
            return states

    # -- margin, marks, funding, liquidation ---------------------------------------------

    def _refusal(self, order: OrderRequest, market: dict[str, Any]) -> str | None:
        _check_prices(order)
        if not market.get("contract"):
            return f"{order.pair} has no futures contract on {self.exchange.id}"
        if market.get("active") is False:
            return MARKET_CLOSED
        if order.opening:
            self._prepare(order)
        return None

    def _prepare(self, order: OrderRequest) -> None:
        """Leverage and margin mode on the symbol, before an order that opens a position."""
        pair = order.pair
        self.account.leverage[pair] = max(1, round(order.leverage or 1.0))
        problem = margin_mode_change(self.account, pair, self.settings.margin_mode)
        if problem is not None:
            log.warning("%s: %s margin not set: %s", pair, self.settings.margin_mode, problem)

    def _symbol(self, pair: str) -> str:
        """The pair's linear perpetual, settled in the quote: BTC/USDT -> BTC/USDT:USDT."""
        return pair if ":" in pair else f"{pair}:{pair.split('/')[-1]}"

    def _trigger(self, pair: str) -> tuple[str, float]:
        if self.settings.stop_trigger == "mark":
            return "mark", self._mark(pair)
        return "last", self._last(pair)

    def _watched(self) -> list[str]:
        resting = {o.request.pair for o in self.account.resting()}
        return sorted(resting | set(self.account.held_pairs()))

    def _mark(self, pair: str) -> float:
        """The mark price, from the premium index; settles funding times that passed."""
        look = self._premium_at.get(pair)
        known = self.account.marks.get(pair)
        if known is not None and not self._stale(look):
            return known
        symbol = self._symbol(pair)
        premium = self._call(
            f"fetch mark price {pair}", lambda: self.exchange.fetch_funding_rate(symbol)
        )
        mark = _number(premium.get("markPrice"))
        if mark is None or mark <= 0:
            raise ExchangeError(
                f"{self.exchange.id}: {pair} has no mark price in its premium index",
                temporary=True,
            )
        self.account.marks[pair] = mark
        self._premium_at[pair] = self._clock()
        self._settle_funding(pair)
        upcoming = premium.get("fundingTimestamp")
        if upcoming:
            self.account.next_funding[pair] = int(upcoming)
        return mark

    def _settle_funding(self, pair: str) -> None:
        """Charge the funding times passed since the last look, at the exchange's rates.
        A position never looked at since it opened (the process died right after its
        entry) owes the funding times since it opened."""
        position, now = self.account.position(pair), _ms(self._clock())
        if not abs(position.amount) > EPSILON:
            return
        due = self.account.next_funding.get(pair, position.since)
        if due > now:
            return
        symbol = self._symbol(pair)
        rows = self._call(
            f"fetch funding history {pair}",
            lambda: self.exchange.fetch_funding_rate_history(symbol, due, 100),
        )
        for row in rows or []:
            time, rate = int(row.get("timestamp") or 0), _number(row.get("fundingRate"))
            if due <= time <= now and rate is not None:
                mark = _number((row.get("info") or {}).get("markPrice"))
                if mark is None or mark <= 0:
                    mark = self.account.marks[pair]
                charge = self.account.fund(pair, time, rate, mark)
                if charge is not None:
                    log.info("%s: funding %+.6g %s at rate %g", pair, -charge.paid,
                             self.stake_currency, rate)  # fmt: skip

    def _look_at_position(self, pair: str, *, stops_first: bool) -> bool:
        """Liquidate the position when the mark price has reached its liquidation price.
        Before the orders are worked (`stops_first`), a stop that lies nearer than the
        liquidation price and has triggered goes first: the price met it on the way."""
        if abs(self.account.position(pair).amount) <= EPSILON:
            return False
        self._mark(pair)
        price = self.account.liquidation_due(pair)
        if price is None or (stops_first and self._stop_comes_first(pair, price)):
            return False
        record = self.account.liquidate(pair, price, self._clock())
        log.warning(
            "%s: the %s position of %g is liquidated at the mark price %.8g; %.8g %s of "
            "margin lost", pair, "long" if record.amount > 0 else "short", abs(record.amount),
            price, record.lost, self.stake_currency,
        )  # fmt: skip
        return True

    def _stop_comes_first(self, pair: str, liquidation: float) -> bool:
        sign = 1.0 if self.account.position(pair).amount > 0 else -1.0
        trigger = self._trigger(pair)[1]
        return any(
            order.stop is not None
            and not order.request.opening
            and not beyond_liquidation(order.stop, liquidation, sign)
            and (order.triggered or stop_triggered(trigger, order.stop, order.buying))
            for order in self.account.resting(pair)
        )

    def _take(self, order: PaperOrder, levels: list[Level], *, arriving: bool) -> bool:
        """A reduce-only order takes no more than the position holds, and expires once
        there is nothing left to reduce."""
        if order.request.opening:
            return super()._take(order, levels, arriving=arriving)
        amount = self.account.reducible(order)
        if amount <= EPSILON:
            self.account.end(order, "expired", self._clock())
            return True
        taken = self._rule(order, arriving=arriving)(levels, amount)
        return self.account.book(order, taken, self._clock())


def _ms(stamp: pd.Timestamp) -> int:
    return int(stamp.value // 1_000_000)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
