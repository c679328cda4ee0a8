"""ccxt clients, and the one rule for talking to an exchange: retry what is temporary.

Network trouble, 5xx, 429 and malformed answers are temporary: retried with
exponential backoff (a 429's Retry-After is honoured). Anything else the exchange
says (bad symbol, bad request, banned) needs a human and ends the command with
ExchangeError(temporary=False). The same split freqtrade makes, in one place.
"""

from __future__ import annotations

import difflib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from kinetic_rules.errors import ConfigError, ExchangeError, ExchangeUnreachable

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


REACH_SECONDS = 4.0  # for the name, then for the connection: well under 10 s in all


def ensure_reachable(exchange: Any, seconds: float = REACH_SECONDS) -> None:
    """Resolve the exchange's API host and open a connection to it, each within `seconds`;
    ExchangeUnreachable saying which step failed. Run before a command's first request, so
    an offline machine hears why at once instead of after minutes of retries."""
    host, port = api_address(exchange)
    found: list[Any] = []
    failed: list[BaseException] = []

    def resolve() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as error:
            failed.append(error)

    # getaddrinfo has no timeout of its own: a resolver that never answers must not hang us
    lookup = threading.Thread(target=resolve, name="resolve-exchange", daemon=True)
    lookup.start()
    lookup.join(seconds)
    if lookup.is_alive():
        raise ExchangeUnreachable(unreachable(exchange.id, host, port, "timed out", seconds))
    if failed or not found:
        raise ExchangeUnreachable(unreachable(exchange.id, host, port, "name not resolved"))
    last: OSError | None = None
    for family, kind, proto, _, address in found:
        try:
            with socket.socket(family, kind, proto) as connection:
                connection.settimeout(seconds)
                connection.connect(address)
                return
        except TimeoutError:
            raise ExchangeUnreachable(
                unreachable(exchange.id, host, port, "timed out", seconds)
            ) from None
        except OSError as error:
            last = error
    cause = "connection refused" if isinstance(last, ConnectionRefusedError) else "network error"
    detail = "" if isinstance(last, ConnectionRefusedError) else f" ({last})"
    raise ExchangeUnreachable(unreachable(exchange.id, host, port, cause) + detail)


def unreachable(exchange_id: str, host: str, port: int, cause: str, seconds: float = 0) -> str:
    """The one wording of "no connection" in every command."""
    advice = {
        "name not resolved": f"the name {host} does not resolve: is this machine online, "
        "and its DNS working?",
        "connection refused": "nothing accepts connections there: a wrong address, a "
        "firewall or a proxy?",
        "timed out": f"no answer within {seconds:g} seconds: is this machine online?",
    }.get(cause, "check this machine's network connection")
    return f"cannot reach the exchange {exchange_id} at {host}:{port}: {cause}; {advice}"


def api_address(exchange: Any) -> tuple[str, int]:
    """Host and port of the exchange's public API (the first URL ccxt lists otherwise)."""
    urls = exchange.urls.get("api")
    chosen = urls.get("public") if isinstance(urls, dict) else urls
    if not isinstance(chosen, str):
        chosen = next(iter(_urls(urls)), None)
    parts = urlsplit(chosen or "")
    if not parts.hostname:
        raise ConfigError(f"exchange {exchange.id}: no API address to connect to")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _urls(urls: Any) -> list[str]:
    if isinstance(urls, dict):
        return [u for value in urls.values() for u in _urls(value)]
    return [urls] if isinstance(urls, str) and urls.startswith(("http://", "https://")) else []


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
                cause = _connection_cause(error)
                if cause is not None:
                    host, port = api_address(exchange)
                    raise ExchangeUnreachable(unreachable(exchange.id, host, port, cause)) from None
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


def _connection_cause(error: Exception) -> str | None:
    """Why no connection could be made, when that is what a network error says."""
    import ccxt

    if not isinstance(error, ccxt.NetworkError) or isinstance(error, ccxt.ExchangeNotAvailable):
        return None
    text = str(error).lower()
    if "resolve" in text or "name or service not known" in text or "nodename" in text:
        return "name not resolved"
    if "refused" in text:
        return "connection refused"
    return None


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
