"""The dashboard inside a running session: watch it, and serve the app on a thread."""

from __future__ import annotations

import logging
from pathlib import Path

from kinetic_rules.errors import KineticError
from kinetic_rules.live.controls import Journal, SessionControls
from kinetic_rules.ui.app import create_app
from kinetic_rules.ui.hub import Hub
from kinetic_rules.ui.serve import Background, Listen
from kinetic_rules.ui.sources import STRATEGY_KEY, LiveSource, strategy_record
from kinetic_rules.ui.watch import Watch

log = logging.getLogger("kinetic_rules.ui")


def serve_session(
    controls: SessionControls,
    strategy_path: Path,
    listen: Listen,
    token: str | None,
    journal: Journal | None = None,
) -> Background:
    """Watch the session's closes and events and serve the dashboard until closed."""
    runtime = controls.runtime
    hub = Hub()
    watch = Watch(runtime, publish=hub.publish)
    runtime.observers.append(watch)
    runtime.notifiers.append(watch)
    if journal is not None:  # `ui --db` shows the strategy after the session is over
        plan = runtime.plan
        record = strategy_record(
            plan.strategy.spec.metadata.name, strategy_path, dict(plan.strategy.params)
        )
        try:
            journal.set_state(STRATEGY_KEY, record)
        except KineticError as problem:
            log.warning("dashboard: could not keep the strategy in the store: %s", problem)
    app = create_app(LiveSource(controls, watch, strategy_path), token, hub)
    served = Background(app, listen)
    controls_note = "controls on" if token else "controls off (no KINETIC_UI_TOKEN)"
    log.info(
        "dashboard on %s (%s)",
        listen.url.replace(f":{listen.port}/", f":{served.port}/"),
        controls_note,
    )
    return served
