"""ccxt clients, and the one rule for talking to an exchange: retry what is temporary.

Network trouble, 5xx, 429 and malformed answers are temporary: retried with
exponential backoff (a 429's Retry-After is honoured). Anything else the exchange
says (bad symbol, bad request, banned) needs a human and ends the command with
ExchangeError(temporary=False). The same split freqtrade makes, in one place.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from kinetic_rules.errors import ConfigError, ExchangeError

T = TypeVar("T")


class MalformedResponse(Exception):
    """The exchange answered, but not with what its API promises; worth another try."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # tries in all, the first included
    base_delay: float = 1.0  # seconds before the first retry
    factor: float = 2.0
    max_delay: float = 60.0
    sleep: Callable[[float], None] = time.sleep  # tests pass a recorder
    network_max_delay: float | None = None  # a lower cap for network trouble than for 429s

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        wait = min(self.max_delay, self.base_delay * self.factor ** (retry - 1))
        return max(wait, min(retry_after, self.max_delay)) if retry_after else wait


def create_exchange(exchange_id: str, *, api_url: str | None = None, futures: bool = False) -> Any:
    """A sync ccxt client with ccxt's own rate limiter on; `api_url` re-hosts every API URL."""
    import ccxt

    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id.lower(), ccxt.exchanges, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ConfigError(f"unknown exchange '{exchange_id}'{hint} (ccxt exchange ids)")
    config: dict[str, Any] = {"enableRateLimit": True}
    if exchange_id == "binance":  # load only the market types the pairs need
        config["options"] = {"fetchMarkets": {"types": ["spot", "linear"] if futures else ["spot"]}}
    exchange = getattr(ccxt, exchange_id)(config)
    if api_url:
        exchange.urls["api"] = rehost(exchange.urls["api"], api_url)
        exchange.session.trust_env = False
    return exchange


def rehost(urls: Any, base_url: str) -> Any:
    """The same URLs with scheme and host replaced by `base_url`; paths are kept."""
    if isinstance(urls, dict):
        return {key: rehost(value, base_url) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith(("http://", "https://")):
        return base_url.rstrip("/") + urlsplit(urls).path
    return urls


def call_with_retry(
    action: Callable[[], T],
    *,
    exchange: Any,
    what: str,
    policy: RetryPolicy,
    on_retry: Callable[[str], None] | None = None,
) -> T:
    """Run one exchange call, retrying temporary failures; ExchangeError when it cannot."""
    import ccxt

    for attempt in range(1, policy.attempts + 1):
        try:
            return action()
        except (ccxt.NetworkError, ccxt.BadResponse, MalformedResponse) as error:
            if attempt == policy.attempts:
                raise ExchangeError(
                    f"{exchange.id}: {what}: gave up after {attempt} attempts; last error: "
                    f"{_describe(error)}",
                    temporary=True,
                ) from None
            wait = policy.delay(attempt, _retry_after(exchange, error))
            if policy.network_max_delay is not None and _kind(error) != "rate limited":
                wait = min(wait, policy.network_max_delay)
            if on_retry:
                on_retry(
                    f"{what}: {_kind(error)}; retrying in {wait:.1f}s "
                    f"(attempt {attempt + 1} of {policy.attempts})"
                )
            policy.sleep(wait)
        except ccxt.BaseError as error:
            raise ExchangeError(
                f"{exchange.id}: {what} failed: {_describe(error)}", temporary=False
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(exchange: Any, error: Exception) -> float | None:
    import ccxt

    if not isinstance(error, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return None
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = next((v for k, v in dict(headers).items() if k.lower() == "retry-after"), None)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _kind(error: Exception) -> str:
    import ccxt

    if isinstance(error, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return "rate limited"
    if isinstance(error, ccxt.RequestTimeout):
        return "timed out"
    if isinstance(error, ccxt.ExchangeNotAvailable):
        return "exchange unavailable"
    if isinstance(error, MalformedResponse | ccxt.BadResponse):
        return "malformed answer"
    return "network error"


def _describe(error: Exception, width: int = 240) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= width else text[: width - 1] + "…"


def suggest_pairs(pair: str, known: list[str]) -> str:
    close = difflib.get_close_matches(pair, known, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""
