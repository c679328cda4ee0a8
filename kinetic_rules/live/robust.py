"""The parts of talking to an exchange that are about time, not orders.

Pacer spaces requests (seed property 19), FailSafe notices an outage that lasts
(property 22), and Redactor keeps the API key and secret out of every log line and
message. All take an injected clock and sleep, so tests run in simulated time.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from kinetic_rules.data.exchange import RetryPolicy
from kinetic_rules.market_rules import TICK_SIZE, MarketRules, rules_from_ccxt, tradable
from kinetic_rules.secrets import mask

log = logging.getLogger("kinetic_rules.live")

Clock = Callable[[], float]  # seconds, monotonic
Sleep = Callable[[float], None]


def live_retry() -> RetryPolicy:
    """Retries for live trading: 7 of them, 429s up to 60 s apart, network trouble 30 s."""
    return RetryPolicy(attempts=8, base_delay=1.0, max_delay=60.0, network_max_delay=30.0)


class Pacer:
    """Keeps at least `spacing` seconds between the starts of consecutive requests."""

    def __init__(self, spacing: float, *, clock: Clock, sleep: Sleep) -> None:
        self.spacing = max(0.0, spacing)
        self._clock, self._sleep = clock, sleep
        self._last: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may start, then count it as started."""
        with self._lock:
            if self._last is not None:
                due = self._last + self.spacing - self._clock()
                if due > 0:
                    self._sleep(due)
            self._last = self._clock()


class FailSafe:
    """On after the exchange has been unreachable for more than `after` seconds straight.

    `failure()` is called for each outage-type error (5xx, timeouts, refused
    connections), `success()` whenever the exchange answers at all. Each transition is
    logged and reported through `on_change(active, message)` exactly once.
    """

    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        after: float = 300.0,
        on_change: Callable[[bool, str], None] | None = None,
    ) -> None:
        self.name, self.after = name, after
        self._clock, self._on_change = clock, on_change
        self._since: float | None = None
        self.active = False
        self._lock = threading.Lock()

    def failure(self, what: str) -> None:
        with self._lock:
            now = self._clock()
            if self._since is None:
                self._since = now
            if self.active or now - self._since <= self.after:
                return
            self.active = True
            message = (
                f"FAIL-SAFE ON: {self.name} has been unavailable for "
                f"{_minutes(now - self._since)} (last error: {what}); no new entries until it "
                "answers again; open positions keep their stop orders on the exchange"
            )
        log.error(message)
        self._report(True, message)

    def success(self) -> None:
        with self._lock:
            since, self._since = self._since, None
            if not self.active:
                return
            self.active = False
            down = _minutes(self._clock() - since) if since is not None else "a while"
            message = f"FAIL-SAFE OFF: {self.name} answers again after {down}; entries resume"
        log.warning(message)
        self._report(False, message)

    def _report(self, active: bool, message: str) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(active, message)
        except Exception:  # a notifier failing must not stop trading
            log.exception("fail-safe notification failed")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


class Redactor:
    """The project's one mask (`kinetic_rules.secrets.mask`), plus this exchange's own
    credentials; the empty string is never a secret."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = tuple(s for s in secrets if s)

    def __call__(self, text: str) -> str:
        return mask(text, self._secrets)


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """What ccxt logs through: its DEBUG lines carry request headers, API key included.

    Messages are formatted here, redacted, then handed to the real logger, so no
    handler, formatter or caplog ever sees a secret.
    """

    def __init__(self, logger: logging.Logger, redact: Redactor) -> None:
        super().__init__(logger, {})
        self.redact = redact

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        kwargs.pop("exc_info", None)  # a traceback could quote the headers again
        self.logger.log(level, self.redact(text), **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


def exchange_reason(error: Exception, exchange_id: str) -> str:
    """The exchange's own words: the `msg` of its JSON error body, else ccxt's text."""
    text = " ".join(str(error).split())
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:])
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("msg"):
            code = body.get("code")
            return f"{body['msg']} (code {code})" if code is not None else str(body["msg"])
    if text.startswith(exchange_id + " "):
        text = text[len(exchange_id) + 1 :]
    return text[:300] or type(error).__name__


def outage_text(error: Exception) -> str:
    """A few words for a notification: "HTTP 503", "request timed out", "network error"."""
    status = re.search(r" (5\d\d) ", str(error))
    if status:
        return f"HTTP {status.group(1)}"
    words = {
        "RequestTimeout": "request timed out",
        "OnMaintenance": "exchange in maintenance",
        "OperationFailed": "internal error at the exchange",
    }
    return words.get(type(error).__name__, "network error")


def market_rules(exchange: Any, market: dict[str, Any]) -> MarketRules | None:
    """The tick, amount step and minimums of a loaded ccxt market (None: significant digits)."""
    return rules_from_ccxt(market, int(getattr(exchange, "precisionMode", TICK_SIZE)))


def tradable_amount(exchange: Any, market: dict[str, Any], amount: float) -> float:
    """`amount` rounded down to the market's amount step; 0.0 below its smallest order.

    The rounding is the backtest's own (kinetic_rules/market_rules.py); only a market
    whose precision is in significant digits falls back to ccxt's rounding."""
    import ccxt

    if amount <= 0:
        return 0.0
    rules = market_rules(exchange, market)
    if rules is not None:
        return tradable(rules, amount)
    try:
        rounded = float(exchange.amount_to_precision(market["symbol"], amount * (1 + 1e-12)))
    except ccxt.InvalidOrder:  # below one step of the pair's precision
        return 0.0
    least = ((market.get("limits") or {}).get("amount") or {}).get("min") or 0.0
    return rounded if rounded >= float(least) and rounded > 0 else 0.0
