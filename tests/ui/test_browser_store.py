"""`kinetic-rules ui --db` in a real browser (Debian's chromium, driven by Playwright): the
page of a stopped session draws its decision feed, candle chart, equity and open
positions from what the session recorded in its trade store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.feed import Retention
from kinetic_rules.ui.app import create_app
from kinetic_rules.ui.hub import Hub
from kinetic_rules.ui.serve import Background, Listen
from kinetic_rules.ui.session import watch_session
from kinetic_rules.ui.sources import StoreSource
from tests.ui.conftest import STRATEGY, TOKEN, replayed_session
from tests.ui.test_browser import CHROMIUM, browser, shot

__all__ = ["browser"]  # the module's browser, shared with the live session's tests

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium: install it with `apt-get install chromium`"
)


@pytest.fixture
def stored(fixture_store: Path, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """A replayed session ran with a trade open, and stopped; `ui --db` serves its store."""
    session = replayed_session(fixture_store, tmp_path / "trades.sqlite")
    watch_session(session.runtime, STRATEGY, session.store, Retention(days=7), Hub())
    session.advance(300)
    session.until(lambda: session.open_trades() > 0)
    session.store.close()
    reader = TradeStore(session.store.where, create=False, read_only=True)
    app = create_app(StoreSource(reader), TOKEN)
    server = Background(app, Listen("127.0.0.1", 0))
    yield TestClient(app), f"http://127.0.0.1:{server.port}/"
    server.close()
    reader.close()


def test_the_page_of_a_stopped_session_shows_its_feed_chart_and_positions(
    browser: Any, stored: tuple[TestClient, str]
) -> None:
    from playwright.sync_api import expect

    api, url = stored
    newest = api.get("/api/decisions").json()[0]
    position = api.get("/api/positions").json()[0]
    pair = api.get("/api/status").json()["pairs"][0]["pair"]
    candles = len(api.get("/api/candles", params={"pair": pair, "limit": 1500}).json())
    page = browser.new_page()
    page.goto(url)
    expect(page.locator("#badges")).to_contain_text("from the store")

    first = page.locator(".decision").first
    expect(first).to_contain_text(newest["pair"])
    expect(first).to_contain_text(newest["outcome"])
    line = newest["lines"][0]
    mark = "✓" if line["holds"] else "✗" if line["holds"] is False else "·"
    expect(first).to_contain_text(f"{mark} {line['label']}: {line['text']} → {line['value']}")

    expect(page.locator("#candle-note")).to_contain_text(f"{candles} candles")
    assert candles > 100 and page.locator("#candle-chart canvas").count() > 0
    assert page.locator("#equity-chart canvas").count() > 0

    row = page.locator(f"#positions tr[data-trade='{position['id']}']")
    expect(row).to_contain_text(position["pair"])
    unrealized = position["unrealized"]
    expect(row).to_contain_text(("+" if unrealized > 0 else "") + f"{unrealized:.2f}")
    shot(page, "store")
    page.close()
