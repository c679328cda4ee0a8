"""Things the live runtime tells the outside world about, and the controls it offers.

Notifiers (Telegram, the log) receive Events; a chat command or the dashboard reaches
the runtime only through Controls, so no notifier can reach into the engine. The
dashboard also watches each close through a CloseObserver, which receives plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from kinetic_rules.engine.model import Trade
from kinetic_rules.engine.orders import Event

if TYPE_CHECKING:
    from kinetic_rules.compile.plan import Plan
    from kinetic_rules.engine.portfolio import PairData


class Notifier(Protocol):
    def notify(self, event: Event) -> None:
        """Deliver the event; never raise (a notifier failing must not stop trading)."""
        ...

    def close(self) -> None: ...


class Controls(Protocol):
    """What a chat user or the dashboard may ask of a running bot.

    Called on a notifier's or the web server's own thread, never the runtime's:
    implementations must be thread-safe and answer quickly. `who` says who asked
    ("telegram @name", "ui from 10.0.0.2"): every control is kept in the event log.
    """

    def status_text(self) -> str:
        """Open trades: pair, side, entry, current profit, stop."""
        ...

    def profit_text(self) -> str:
        """Closed profit today and in total, open profit."""
        ...

    def request_stop(self, who: str = "telegram") -> None:
        """Stop opening trades; shut down after this candle (stops stay on the exchange)."""
        ...

    def pause(self, who: str) -> None:
        """No new entries until resumed (exits, stops and the monitor go on); kept
        across a restart."""
        ...

    def resume(self, who: str) -> None: ...

    def close_all(self, who: str) -> int:
        """Cancel every entry order still waiting to fill, then close every open trade
        now, at market; how many trades were closed."""
        ...


@dataclass(frozen=True)
class CanceledEntry:
    """An entry order a person's close canceled while it waited to fill."""

    pair: str
    side: str
    position: int
    filled: float  # what filled before the cancel: a trade, closed with the others
    pending: bool = False  # the exchange was out of reach: the cancel is tried again


@dataclass
class Closing:
    """What a person's close did: the open trades it closes, the entries it canceled."""

    trades: list[Trade] = field(default_factory=list)
    canceled: list[CanceledEntry] = field(default_factory=list)


@dataclass
class OpenPosition:
    """An open trade as it stands at the last close, with what it would make now."""

    trade: Trade  # a copy: reading it never races the runtime
    price: float | None  # the pair's last close
    unrealized: float | None  # profit if closed at that price (fees and funding so far)
    take_profits_done: int
    trailing: bool  # the stop has moved from where it began


@dataclass
class LiveState:
    """The running session at its last close, as plain data."""

    time: pd.Timestamp | None
    positions: list[OpenPosition] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)  # copies, oldest entry first
    starting_balance: float = 0.0
    realized: float = 0.0  # closed trades' profit, in the stake currency
    paused: bool = False
    stopping: bool = False
    fail_safe: bool = False  # the exchange's fail-safe: no new entries


@dataclass
class CloseMoment:
    """One close, as the runtime saw it: every pair's data at that close (plain data the
    runtime hands out; reading it changes nothing) and what the runtime did."""

    time: pd.Timestamp
    plan: Plan
    market: dict[str, PairData]
    step: int
    entered: list[tuple[str, str, int]]  # (pair, side, position id) decided at this close
    paused: bool
    stopping: bool
    fail_safe: bool


class CloseObserver(Protocol):
    def closed(self, moment: CloseMoment) -> None:
        """Called on the runtime's thread after each close; must be quick and never raise."""
        ...
