"""The dashboard's watch on a running session: at each close it keeps the decision feed,
a point of the equity curve and each pair's regime and protections, and it hands every
event and close to the web page's stream.

It runs on the runtime's thread after each close (a CloseObserver) and as a notifier, so
it keeps to small bounded buffers and never raises. With a recorder, each close is
written to the trade store before it is kept here or shown (see record.py).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import pandas as pd

from kinetic_rules.backtest.explain import EntryVerdict, entry_verdicts
from kinetic_rules.engine.orders import Event
from kinetic_rules.engine.portfolio import PairData
from kinetic_rules.live.events import CloseMoment
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.ui.models import DecisionOut, LineOut, PartOut
from kinetic_rules.ui.record import FeedRecorder, pair_states, stored_decision

log = logging.getLogger("kinetic_rules.ui")
KEEP_DECISIONS = 500
KEEP_EVENTS = 1000
KEEP_EQUITY = 20_000
KEEP_CHANGES = 50


@dataclass
class Decision:
    time: pd.Timestamp
    pair: str
    verdict: EntryVerdict
    outcome: str


@dataclass
class PairState:
    regime: str | None
    blocked: bool
    shortlisted: bool


@dataclass
class Watch:
    """What the dashboard knows of a running session beyond its current state."""

    runtime: Runtime
    publish: Callable[[dict[str, object]], None] = lambda message: None
    decisions: deque[Decision] = field(default_factory=lambda: deque(maxlen=KEEP_DECISIONS))
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=KEEP_EVENTS))
    equity: deque[tuple[pd.Timestamp, float, float]] = field(
        default_factory=lambda: deque(maxlen=KEEP_EQUITY)
    )
    pairs: dict[str, PairState] = field(default_factory=dict)
    scanner_changes: deque[tuple[pd.Timestamp, list[str], list[str]]] = field(
        default_factory=lambda: deque(maxlen=KEEP_CHANGES)
    )
    exchange: str = "ok"
    recorder: FeedRecorder | None = None  # keeps each close in the trade store
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- Notifier ------------------------------------------------------------------------
    def notify(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
            if event.kind == "fail_safe_entered":
                self.exchange = f"out of reach since {event.time:%Y-%m-%d %H:%M} UTC"
            elif event.kind == "fail_safe_left":
                self.exchange = "ok"
        self.publish(
            {"type": "event", "kind": event.kind, "message": event.message, "event": event}
        )

    def close(self) -> None:
        """The session ends: the closes not recorded yet are. (The stream ends with the
        server, not with the notifiers.)"""
        if self.recorder is not None:
            self.recorder.flush()

    # -- CloseObserver -------------------------------------------------------------------
    def closed(self, moment: CloseMoment) -> None:
        try:
            self._closed(moment)
        except Exception:  # the dashboard must never stop trading
            log.exception("dashboard: could not read the close at %s", moment.time)
        self.publish({"type": "close", "time": moment.time.isoformat()})

    def _closed(self, moment: CloseMoment) -> None:
        state = self.runtime.state(trades=False)
        start = state.starting_balance + state.realized
        total = start + sum(p.unrealized or 0.0 for p in state.positions)
        pairs, found = {}, []
        for pair, data in moment.market.items():
            at = _local(data, moment.step)
            if at is None:
                continue
            pairs[pair] = _pair_state(moment, data, at)
            if at >= data.tradable_from:
                found += self._decisions(moment, pair, data, at)
        # Only this thread writes `pairs` and the scanner's changes: reading them is safe.
        before = {p for p, s in self.pairs.items() if s.shortlisted}
        after = {p for p, s in pairs.items() if s.shortlisted}
        change = None
        if self.pairs and before != after:
            change = (moment.time, sorted(after - before), sorted(before - after))
        if self.recorder is not None:  # kept before it is shown: a crash loses nothing shown
            changes = [*self.scanner_changes, *([change] if change else [])][-KEEP_CHANGES:]
            snapshot = partial(_snapshot, moment, self.exchange, pairs, changes)
            kept = [stored_decision(d) for d in found]
            self.recorder.record(moment, kept, (start, total), state.positions, snapshot)
        with self._lock:
            self.equity.append((moment.time, start, total))
            if change is not None:
                self.scanner_changes.append(change)
            self.pairs = pairs
            self.decisions.extend(found)

    def _decisions(self, moment: CloseMoment, pair: str, data: PairData, at: int) -> list[Decision]:
        """The sides that came near an entry: every condition held, or all but one of
        three or more (with two, one holding is too common to be news)."""
        found: list[Decision] = []
        if not moment.plan.shown:  # the plan keeps no entry lines (a session without --ui)
            return found
        for verdict in entry_verdicts(moment.plan, data.signals, at):
            short = verdict.total - verdict.held
            if verdict.total == 0 or short > 1 or (short == 1 and verdict.total < 3):
                continue
            outcome = _outcome(moment, pair, data, at, verdict)
            found.append(Decision(moment.time, pair, verdict, outcome))
        return found


def _snapshot(
    moment: CloseMoment,
    exchange: str,
    pairs: dict[str, PairState],
    changes: list[tuple[pd.Timestamp, list[str], list[str]]],
) -> dict[str, object]:
    """What the trade store keeps of the newest close beside its positions."""
    return {
        "stake_currency": moment.plan.strategy.spec.market.stake_currency,
        "exchange": exchange,
        "pairs": pair_states(pairs),
        "scanner_changes": [{"time": t, "added": a, "removed": r} for t, a, r in changes],
    }


def _local(data: PairData, step: int) -> int | None:
    """The pair's own candle index at this close; None if it has no candle here."""
    if not len(data.timeline_index) or data.timeline_index[-1] != step:
        return None
    return len(data.timeline_index) - 1


def _pair_state(moment: CloseMoment, data: PairData, at: int) -> PairState:
    regimes = [name for name, _ in moment.plan.strategy.regime]
    regime = None
    if data.signals.regime is not None and regimes:
        number = data.signals.regime[at]
        regime = regimes[int(number)] if number == number else None  # NaN: warm-up
    blocked = bool(data.blocked[at]) if data.blocked is not None else False
    return PairState(regime, blocked, bool(data.allowed[at]))


def _outcome(moment: CloseMoment, pair: str, data: PairData, at: int, verdict: EntryVerdict) -> str:
    """What became of it: the trade it opened, why it got no slot, or what was missing."""
    if not verdict.verdict.startswith("SIGNAL"):
        missing = [line.label for line in verdict.lines if line.holds is False]
        return "no signal: " + ", ".join(missing) + " did not hold"
    for entered, side, position in moment.entered:
        if entered == pair and side == verdict.side:
            return f"entered: position #{position}, its order sent at this close"
    signal = data.entries.get(verdict.side)  # type: ignore[call-overload]
    if moment.stopping:
        return "no slot: the session is stopping"
    if moment.paused:
        return "no slot: new entries are paused"
    if moment.fail_safe:
        return "no slot: the exchange's fail-safe is on"
    if data.blocked is not None and data.blocked[at]:
        return "no slot: a protection blocks entries on this pair"
    if not data.allowed[at]:
        return "no slot: not on the scanner's list"
    if signal is not None and not signal[at]:
        return "no slot: a rule reading the portfolio did not hold"
    return "no slot: the portfolio decided (open-trade limit, cooldown, funds, or a pending order)"


def decision_out(decision: Decision) -> DecisionOut:
    """A decision as the API shows it (and the trade store keeps it)."""
    verdict = decision.verdict
    lines = [
        LineOut(
            label=line.label,
            text=line.text,
            value=line.value,
            holds=line.holds,
            parts=[PartOut(text=text, value=value) for text, value in line.parts],
        )
        for line in verdict.lines
    ]
    return DecisionOut(
        time=decision.time,
        pair=decision.pair,
        side=verdict.side,
        verdict=verdict.verdict,
        held=verdict.held,
        total=verdict.total,
        outcome=decision.outcome,
        lines=lines,
    )
