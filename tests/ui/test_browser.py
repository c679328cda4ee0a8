"""The dashboard in a real browser (Debian's chromium, driven by Playwright): a replayed
session streams into the page, the controls work from it, and refuse without the token.

Screenshots of the main views are kept in test-artifacts/ (not committed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kinetic_rules.ui.serve import Background, Listen
from tests.ui.conftest import TOKEN, Session, live_app, replayed_session

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium: install it with `apt-get install chromium`"
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One browser for the module, on a fresh profile."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=ARGS, headless=True,
            viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        yield context
        context.close()


@pytest.fixture
def served(fixture_store: Path, tmp_path: Path) -> Iterator[tuple[Session, str]]:
    session = replayed_session(fixture_store, tmp_path / "trades.sqlite")
    server = Background(live_app(session), Listen("127.0.0.1", 0))
    yield session, f"http://127.0.0.1:{server.port}/"
    server.close()
    session.store.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_a_replayed_session_streams_in_and_is_controlled_from_the_page(
    browser: Any, served: tuple[Session, str]
) -> None:
    from playwright.sync_api import expect

    session, url = served
    page = browser.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # close-all and stop ask first
    page.goto(url)
    expect(page.locator("body[data-stream=open]")).to_have_count(1)
    expect(page.locator("#positions tbody")).to_contain_text("No open positions.")

    # The session runs: its first trade appears without a reload, with the decision
    # that made it (explain's lines) and the equity curve.
    session.until(lambda: session.open_trades() > 0)
    trade = session.runtime.state().positions[0].trade
    row = page.locator(f"#positions tr[data-trade='{trade.id}']")
    expect(row).to_contain_text(trade.pair)
    entered = page.locator(".decision.entered").first
    expect(entered).to_contain_text(trade.pair)
    expect(entered).to_contain_text("✓ cross: crossed_above(fast, slow) → true")
    expect(entered).to_contain_text("✓ room: rsi(close, 14) < 70 → true")
    expect(entered.locator(".parts")).to_contain_text(re.compile(r"rsi\(close, 14\) = \d"))
    assert page.locator("#equity-chart canvas").count() > 0
    assert page.locator("#candle-chart canvas").count() > 0
    shot(page, "positions")

    # Without the token the page is refused, and nothing changes.
    page.click("button[data-control=pause]")
    expect(page.locator("#control-result")).to_contain_text("refused (401)")
    assert not session.runtime.paused

    # With it: pause. Signals come and find no slot; no trade opens.
    page.fill("#token", TOKEN)
    page.click("button[data-control=pause]")
    expect(page.locator("#badges")).to_contain_text("entries paused")
    count = len(session.runtime.trades())
    watch = session_watch(session)
    blocked = "no slot: new entries are paused"
    session.until(lambda: any(d.outcome == blocked for d in list(watch.decisions)))
    session.advance(3)
    assert len(session.runtime.trades()) == count
    expect(page.locator(".decision.noslot").first).to_contain_text("new entries are paused")
    shot(page, "decisions")

    # Resume; once trades are open, close them all from the page.
    page.click("button[data-control=resume]")
    expect(page.locator("#badges")).not_to_contain_text("entries paused")
    session.until(lambda: session.open_trades() > 0)
    expect(page.locator("#positions tr[data-trade]").first).to_be_visible()
    page.click("button[data-control=close-all]")
    expect(page.locator("#control-result")).to_contain_text("open trade(s) closing")
    assert session.open_trades() == 0
    expect(page.locator("#positions tbody")).to_contain_text("No open positions.")
    expect(page.locator("#events")).to_contain_text("Close all asked")
    expect(page.locator("#trades tbody")).to_contain_text("control:close")

    # Phone-sized: every panel still fits the width (tables scroll inside their panel).
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    shot(page, "phone")
    page.close()


def session_watch(session: Session) -> Any:
    return next(o for o in session.runtime.observers)


def test_the_page_reads_only_what_changed_while_the_session_runs(
    browser: Any, served: tuple[Session, str]
) -> None:
    """After the first read, closed trades come over the stream, and each close reads
    only newer equity points and decisions: no page of trades is read again."""
    from playwright.sync_api import expect

    session, url = served
    page = browser.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(url)
    expect(page.locator("body[data-stream=open]")).to_have_count(1)
    session.until(lambda: session.open_trades() > 0)
    expect(page.locator("#positions tr[data-trade]").first).to_be_visible()
    page.wait_for_timeout(1000)  # the reads the stream's opening asked for are done
    asked.clear()
    closed_before = {t.id for t in session.runtime.trades() if t.exit_time is not None}
    session.until(lambda: session.open_trades() == 0)
    closed = [t for t in session.runtime.trades() if t.exit_time and t.id not in closed_before]
    assert closed
    for trade in closed:
        row = page.locator(f"#trades tr[data-trade='{trade.id}']")
        expect(row).to_contain_text(trade.exit_reason or "")
    expect(page.locator("#events")).to_contain_text(f"Closed {closed[-1].pair}")
    expect(page.locator("#positions tbody")).to_contain_text("No open positions.")
    reads = [u.split("/api/", 1)[1] for u in asked if "/api/" in u]
    assert reads and not [r for r in reads if r.startswith("trades")]
    assert all("after=" in r for r in reads if r.startswith(("equity", "decisions")))
    assert all("limit=3" in r for r in reads if r.startswith("candles"))
    page.close()
