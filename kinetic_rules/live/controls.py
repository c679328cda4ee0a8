"""SessionControls: what a person may do to a running session, from the dashboard or chat.

Both go through these same methods, so pausing from Telegram and pausing from the web
page are one thing. Every control is written to the event log (kind "control", with who
asked and when) through the runtime's notifiers, and a pause is kept in the journal so a
restarted session stays paused until someone resumes it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Protocol

import pandas as pd

from kinetic_rules.live.events import Closing
from kinetic_rules.live.runtime import Pause, Runtime

log = logging.getLogger("kinetic_rules.live")
CLOSE_REASON = "control:close"  # the exit reason of a trade a person closed
KEEP_PAUSES = 200  # the journal keeps the latest pauses (a resumed session replays them)


class Journal(Protocol):
    def state(self, key: str) -> str | None: ...

    def set_state(self, key: str, value: str) -> None: ...


def paused_key(strategy: str) -> str:
    """The journal's key for a strategy's pause (the state table holds 200 characters)."""
    return f"controls:paused:{strategy[:150]}"


def wall_clock() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


class SessionControls:
    """Implements Controls on a Runtime; thread-safe (the runtime takes its own lock)."""

    def __init__(
        self,
        runtime: Runtime,
        journal: Journal | None = None,
        clock: Callable[[], pd.Timestamp] = wall_clock,
    ) -> None:
        self.runtime = runtime
        self.journal = journal
        self.clock = clock
        self._key = paused_key(runtime.plan.strategy.spec.metadata.name)
        text = journal.state(self._key) if journal is not None else None
        if text:
            runtime.restore_pauses(_pauses(text))
            if runtime.paused:
                log.warning("new entries are paused (since before the restart); resume to trade")

    # -- reading -------------------------------------------------------------------------

    def status_text(self) -> str:
        paused = "New entries are paused.\n" if self.runtime.paused else ""
        return paused + self.runtime.status_text()

    def profit_text(self) -> str:
        return self.runtime.profit_text()

    @property
    def paused(self) -> bool:
        return self.runtime.paused

    # -- acting --------------------------------------------------------------------------

    def pause(self, who: str) -> None:
        self.runtime.pause()
        self._journal_pauses()
        self._record("pause", who, "New entries paused; open trades, exits and stops go on")

    def resume(self, who: str) -> None:
        self.runtime.resume()
        self._journal_pauses()
        self._record("resume", who, "New entries resumed")

    def close_position(self, trade_id: int, who: str) -> Closing | None:
        """Close one open trade now, and cancel an entry order waiting to fill on its
        pair; None if no open trade has that id."""
        closing = self.runtime.close_positions({trade_id}, CLOSE_REASON, self.clock())
        if not closing.trades:
            return None
        trade = next((t for t in closing.trades if t.id == trade_id), closing.trades[0])
        said = f"Close {trade.pair} {trade.side} #{trade.id} asked" + _canceled_text(closing)
        self._record("close", who, said, closing)
        return closing

    def close_all(self, who: str) -> int:
        return len(self.close_everything(who).trades)

    def close_everything(self, who: str) -> Closing:
        """Cancel every entry order waiting to fill, then close every open trade: nothing
        is left open, even by an order that fills meanwhile."""
        closing = self.runtime.close_positions(None, CLOSE_REASON, self.clock())
        said = f"Close all asked: {len(closing.trades)} open trade(s) closing"
        self._record("close_all", who, said + _canceled_text(closing), closing)
        return closing

    def request_stop(self, who: str = "telegram") -> None:
        self.runtime.request_stop()
        self._record("stop", who, "Stop asked: no new trades, the session ends after this candle")

    # -- internals -----------------------------------------------------------------------

    def _journal_pauses(self) -> None:
        if self.journal is not None:
            pauses = self.runtime.pauses()[-KEEP_PAUSES:]
            rows = [[_iso(p.after), _iso(p.until)] for p in pauses]
            self.journal.set_state(self._key, json.dumps(rows))

    def _record(self, action: str, who: str, message: str, closing: Closing | None = None) -> None:
        """The event log's row: what, who, when (wall-clock time of the request), and
        for a close the trades it closes and the entry orders it canceled."""
        when = self.clock()
        log.warning("control: %s by %s", action, who)
        data: dict[str, object] = {"action": action, "who": who, "at": when.isoformat()}
        if closing is not None:
            data["trades"] = [t.id for t in closing.trades]
            data["canceled"] = [
                {"pair": c.pair, "side": c.side, "position": c.position, "filled": c.filled,
                 "pending": c.pending}
                for c in closing.canceled
            ]  # fmt: skip
        self.runtime.announce("control", when, f"{message} (by {who})", data)


def _canceled_text(closing: Closing) -> str:
    if not closing.canceled:
        return ""
    filled = sum(c.filled > 0 for c in closing.canceled)
    pending = sum(c.pending for c in closing.canceled)
    text = f"; {len(closing.canceled)} entry order(s) waiting to fill canceled"
    if filled:
        text += f" ({filled} had filled in part or whole: closing too)"
    if pending:
        text += f" ({pending} not reached yet: asked again at each check)"
    return text


def _iso(time: pd.Timestamp | None) -> str | None:
    return None if time is None else time.isoformat()


def _pauses(text: str) -> list[Pause]:
    """The journal's pauses; an unreadable entry is taken as paused (the safe side)."""
    try:
        rows = json.loads(text)
        return [Pause(*(None if t is None else pd.Timestamp(t) for t in row)) for row in rows]
    except (ValueError, TypeError):
        log.warning("the journal's pause record is unreadable; new entries stay paused")
        return [Pause(None, None)]
