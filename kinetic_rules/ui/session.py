"""The dashboard inside a running session: watch it, record it in the trade store, and
serve the app on a thread."""

from __future__ import annotations

import logging
from pathlib import Path

from kinetic_rules.errors import KineticError
from kinetic_rules.live.controls import SessionControls
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.persist.feed import Retention
from kinetic_rules.persist.store import TradeStore
from kinetic_rules.ui.app import create_app
from kinetic_rules.ui.hub import Hub
from kinetic_rules.ui.record import FeedRecorder
from kinetic_rules.ui.serve import Background, Listen
from kinetic_rules.ui.sources import STRATEGY_KEY, LiveSource, strategy_record
from kinetic_rules.ui.watch import Watch

log = logging.getLogger("kinetic_rules.ui")


def watch_session(
    runtime: Runtime,
    strategy_path: Path,
    store: TradeStore | None,
    keep: Retention,
    hub: Hub | None = None,
) -> Watch:
    """Watch each close of the session; with a trade store, record each one there (the
    decision feed within `keep`) so `ui --db` shows the session after it is over."""
    watch = Watch(runtime, publish=hub.publish if hub is not None else lambda message: None)
    if store is not None:
        # Shown on a page: each close is written before it is shown. Else in batches.
        watch.recorder = FeedRecorder(store, keep, runtime.step_length, immediate=hub is not None)
        plan = runtime.plan
        record = strategy_record(
            plan.strategy.spec.metadata.name, strategy_path, dict(plan.strategy.params)
        )
        try:
            store.set_state(STRATEGY_KEY, record)
        except KineticError as problem:
            log.warning("dashboard: could not keep the strategy in the store: %s", problem)
    runtime.observers.append(watch)
    runtime.notifiers.append(watch)
    return watch


def serve_session(
    controls: SessionControls,
    strategy_path: Path,
    listen: Listen,
    token: str | None,
    store: TradeStore | None,
    keep: Retention,
) -> Background:
    """Watch the session's closes and events and serve the dashboard until closed."""
    hub = Hub()
    watch = watch_session(controls.runtime, strategy_path, store, keep, hub)
    app = create_app(LiveSource(controls, watch, strategy_path), token, hub)
    served = Background(app, listen)
    controls_note = "controls on" if token else "controls off (no KINETIC_UI_TOKEN)"
    log.info(
        "dashboard on %s (%s)",
        listen.url.replace(f":{listen.port}/", f":{served.port}/"),
        controls_note,
    )
    return served
