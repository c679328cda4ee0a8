"""Notifiers: the log (always on), Telegram (when configured), and a fan-out of several.

    notifier = MultiNotifier([LogNotifier(), *filter(None, [notifier_from_env(controls)])])
    notifier.notify(Event("trade_opened", now, "Opened SOL/USDT long at 145.20"))
    notifier.close()

Secrets come from the environment only: the Telegram bot token is read from
KINETIC_TELEGRAM_TOKEN, never from a strategy file, and is masked in every log record
(see `hide_in_logs`). Telegram lives in `kinetic_rules.live.telegram` and is imported only
when configured.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from kinetic_rules.engine.orders import Event, EventKind
from kinetic_rules.errors import ConfigError
from kinetic_rules.live.events import Controls, Notifier
from kinetic_rules.secrets import install_log_masking, register

if TYPE_CHECKING:
    from kinetic_rules.live.telegram import TelegramNotifier

__all__ = [
    "CHAT_ENV",
    "TOKEN_ENV",
    "LogNotifier",
    "MultiNotifier",
    "TelegramNotifier",
    "event_text",
    "hide_in_logs",
    "notifier_from_env",
]

logger = logging.getLogger("kinetic_rules.live")

TOKEN_ENV = "KINETIC_TELEGRAM_TOKEN"
CHAT_ENV = "KINETIC_TELEGRAM_CHAT_ID"
_TOKEN_SHAPE = re.compile(r"\d+:[A-Za-z0-9_-]+")

TITLES: dict[EventKind, str] = {
    "started": "Bot started",
    "stopped": "Bot stopped",
    "trade_opened": "Trade opened",
    "trade_closed": "Trade closed",
    "order_rejected": "Order rejected",
    "order_timeout": "Order timed out",
    "fail_safe_entered": "Fail-safe ON: no new trades",
    "fail_safe_left": "Fail-safe OFF: trading again",
    "error": "Error",
    "warning": "Warning",
    "control": "Control",
}
_LEVELS: dict[EventKind, int] = {
    "order_rejected": logging.WARNING,
    "order_timeout": logging.WARNING,
    "fail_safe_entered": logging.WARNING,
    "error": logging.ERROR,
    "warning": logging.WARNING,
}


# --- texts -------------------------------------------------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _signed(value: float) -> str:
    """Two decimals for amounts a person reads in USDT; significant digits for BTC-sized ones."""
    return f"{value:+.2f}" if abs(value) >= 1 or value == 0 else f"{value:+.6g}"


def profit_text(data: Mapping[str, object]) -> str | None:
    """`+4.80 USDT (+3.31%)` from the event data's `profit`, `stake_currency`, `profit_ratio`."""
    profit, ratio = _number(data.get("profit")), _number(data.get("profit_ratio"))
    currency = data.get("stake_currency")
    parts = []
    if profit is not None:
        parts.append(_signed(profit) + (f" {currency}" if isinstance(currency, str) else ""))
    if ratio is not None:
        percent = f"{ratio * 100:+.2f}%"
        parts.append(f"({percent})" if parts else percent)
    return " ".join(parts) or None


def _when(time: object) -> str | None:
    if not isinstance(time, pd.Timestamp) or pd.isna(time):
        return None
    utc = time.tz_localize("UTC") if time.tzinfo is None else time.tz_convert("UTC")
    return utc.strftime("%Y-%m-%d %H:%M UTC")


def event_text(event: Event) -> str:
    """The chat message: a title with the event's time, its sentence, and the profit if closed."""
    title = TITLES.get(event.kind, event.kind)
    when = _when(event.time)
    lines = [f"{title} ({when})" if when else title, event.message]
    profit = profit_text(event.data) if event.kind == "trade_closed" else None
    if profit:
        lines.append(f"Profit: {profit}")
    return "\n".join(line for line in lines if line)


def _log_line(event: Event) -> str:
    line = f"{event.kind}: {' '.join(event.message.split())}"
    profit = profit_text(event.data) if event.kind == "trade_closed" else None
    return f"{line} | profit {profit}" if profit else line


# --- the log and the fan-out -------------------------------------------------------------------


class LogNotifier:
    """One human-readable line per event on the "kinetic_rules.live" logger."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self._log = log or logger

    def notify(self, event: Event) -> None:
        self._log.log(_LEVELS.get(event.kind, logging.INFO), "%s", _log_line(event))

    def close(self) -> None:
        pass


class MultiNotifier:
    """Hands each event to every notifier; one that fails does not keep it from the others."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self.notifiers = tuple(notifiers)

    def notify(self, event: Event) -> None:
        for notifier in self.notifiers:
            try:
                notifier.notify(event)
            except Exception:
                logger.exception("%s failed to deliver a %s event", _name(notifier), event.kind)

    def close(self) -> None:
        for notifier in self.notifiers:
            try:
                notifier.close()
            except Exception:
                logger.exception("%s failed to close", _name(notifier))


def _name(notifier: object) -> str:
    return type(notifier).__name__


# --- configuration -----------------------------------------------------------------------------


def notifier_from_env(
    controls: Controls,
    environ: Mapping[str, str] | None = None,
    *,
    base_url: str | None = None,
) -> Notifier | None:
    """A TelegramNotifier when both variables are set, None when neither is; else ConfigError.

    `base_url` points at another Bot API server (a self-hosted one, or a test's stand-in).
    """
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "").strip()
    chat = env.get(CHAT_ENV, "").strip()
    if not token and not chat:
        return None
    if not chat:
        raise ConfigError(
            f"{TOKEN_ENV} is set but {CHAT_ENV} is not: set both to get Telegram "
            "notifications, or unset both (see docs/notifications.md)"
        )
    if not token:
        raise ConfigError(
            f"{CHAT_ENV} is set but {TOKEN_ENV} is not: set both to get Telegram "
            "notifications, or unset both (see docs/notifications.md)"
        )
    if not _TOKEN_SHAPE.fullmatch(token):  # never echo the value: it is a secret
        raise ConfigError(
            f"{TOKEN_ENV} does not look like a bot token (digits, a colon, then letters, "
            "digits, - or _, as BotFather gives it; no quotes or spaces)"
        )
    try:
        chat_id = int(chat)
    except ValueError:
        raise ConfigError(
            f"{CHAT_ENV} must be a whole number such as 123456789, or -100123456789 for "
            "a group (see docs/notifications.md to find yours)"
        ) from None  # the value is not echoed: it may be the token, pasted in the wrong place
    from kinetic_rules.live.telegram import TelegramNotifier

    return TelegramNotifier(token, chat_id, controls, base_url=base_url)


# --- secrets in logs ---------------------------------------------------------------------------


def hide_in_logs(secret: str) -> None:
    """Show `secret` as *** in every log record created from now on, whoever logs it.

    httpx logs request URLs at INFO, and Telegram puts the token in the URL; the mask is
    the project's one masking function, installed in the log record factory."""
    if len(secret) < 8:  # too short to be a real secret; masking it would garble logs
        return
    register(secret)
    install_log_masking()


def __getattr__(name: str) -> object:
    """`TelegramNotifier` from here too, without importing python-telegram-bot up front."""
    if name == "TelegramNotifier":
        from kinetic_rules.live.telegram import TelegramNotifier

        return TelegramNotifier
    raise AttributeError(name)
