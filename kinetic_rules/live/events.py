"""Things the live runtime tells the outside world about, and the controls it offers.

Notifiers (Telegram, the log) receive Events; a chat command reaches the runtime only
through Controls, so no notifier can reach into the engine.
"""

from __future__ import annotations

from typing import Protocol

from kinetic_rules.engine.orders import Event


class Notifier(Protocol):
    def notify(self, event: Event) -> None:
        """Deliver the event; never raise (a notifier failing must not stop trading)."""
        ...

    def close(self) -> None: ...


class Controls(Protocol):
    """What a chat user may ask of a running bot.

    Called on a notifier's own thread (Telegram polls in the background), never the
    runtime's: implementations must be thread-safe and answer quickly.
    """

    def status_text(self) -> str:
        """Open trades: pair, side, entry, current profit, stop."""
        ...

    def profit_text(self) -> str:
        """Closed profit today and in total, open profit."""
        ...

    def request_stop(self) -> None:
        """Stop opening trades; shut down after this candle (stops stay on the exchange)."""
        ...
