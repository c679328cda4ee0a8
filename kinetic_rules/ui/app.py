"""The dashboard's web app: the page, a read API, the controls and a WebSocket stream.

Reads are open to whoever reaches the address (keep it on 127.0.0.1, or behind a
tunnel or proxy: docs/dashboard.md). Controls need `Authorization: Bearer <token>`
with the token from KINETIC_UI_TOKEN; without it set they are refused (403).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at
# definition, and `Allowed` is local to create_app.
import asyncio
import contextlib
import hmac
from datetime import datetime
from importlib.resources import files
from typing import Annotated, Literal
from urllib.parse import urlsplit

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request, WebSocket
from fastapi.responses import HTMLResponse, Response
from starlette.websockets import WebSocketDisconnect

from kinetic_rules.engine.orders import Event
from kinetic_rules.live.controls import SessionControls
from kinetic_rules.live.events import Closing
from kinetic_rules.ui.hub import Hub
from kinetic_rules.ui.models import (
    CandleOut,
    ControlOut,
    ControlsState,
    DecisionOut,
    EquityPoint,
    EventOut,
    PositionOut,
    ScannerOut,
    StatusOut,
    StrategyOut,
    TradePage,
)
from kinetic_rules.ui.sources import MAX_PAGE, MAX_ROWS, Source, TradeFilter, event_out

TOKEN_ENV = "KINETIC_UI_TOKEN"
CURSOR = "the cursor: the `next` of the page before (the trades listed after that one)"
STORE_POLL_SECONDS = 2.0  # a stored session: how often the stream looks for news
_STATIC = {  # name -> (package folder, file, media type)
    "dashboard.js": ("ui/static", "dashboard.js", "text/javascript"),
    "dashboard.css": ("ui/static", "dashboard.css", "text/css"),
    "lightweight-charts.js": (
        "assets", "lightweight-charts.standalone.production.js", "text/javascript",
    ),
}  # fmt: skip
NO_TOKEN = (
    f"controls are disabled: set {TOKEN_ENV} in the environment of the process serving "
    "the dashboard (see docs/dashboard.md)"
)


def _asset(folder: str, name: str) -> bytes:
    return files("kinetic_rules").joinpath(folder, name).read_bytes()


def create_app(source: Source, token: str | None, hub: Hub | None = None) -> FastAPI:
    """The app over `source`; `token` None disables the controls."""
    app = FastAPI(
        title="kinetic-rules dashboard",
        description="A trading session's positions, trades, equity, decisions and controls.",
        version="1",
        docs_url=None,  # the interactive docs load their scripts from a CDN: not here
        redoc_url=None,
    )
    hub = hub or Hub()
    app.state.hub = hub
    controls_state: ControlsState = (
        "read-only" if source.controls is None else "enabled" if token else "no token"
    )

    def session(request: Request) -> tuple[SessionControls, str]:
        """The controls and who asks, once the token is checked; else the refusal."""
        controls = source.controls
        if controls is None:  # nothing here can be controlled, with or without a token
            raise HTTPException(409, "no running session: this dashboard only reads")
        if not token:
            raise HTTPException(403, NO_TOKEN)
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.encode()
        ):
            raise HTTPException(
                401, "a control needs the header Authorization: Bearer <token>; "
                "this one is missing or wrong", headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        client = request.client.host if request.client else "unknown"
        return controls, f"ui from {client}"

    Allowed = Annotated[tuple[SessionControls, str], Depends(session)]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_asset("ui/static", "index.html").decode())

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC:
            raise HTTPException(404, "no such file")
        folder, file, media = _STATIC[name]
        return Response(_asset(folder, file), media_type=media)

    @app.get("/api/status")
    def status() -> StatusOut:
        return source.status(controls_state)

    @app.get("/api/positions")
    def positions() -> list[PositionOut]:
        return source.positions()

    @app.get("/api/trades")
    def trades(
        pair: Annotated[str | None, Query(max_length=64)] = None,
        side: Literal["long", "short"] | None = None,
        reason: Annotated[str | None, Query(max_length=200)] = None,
        start: datetime | None = None,
        end: datetime | None = None,
        after: Annotated[int | None, Query(ge=1, description=CURSOR)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 200,
    ) -> TradePage:
        """Closed trades, newest (highest id) first, a page at a time (open trades are
        /api/positions). `reason`: exit reasons containing it; `start` (inclusive) and
        `end` (exclusive) bound the entry time."""
        which = TradeFilter(pair, side, reason or None, start, end, limit + 1, after)
        found = source.trades(which)
        shown = found[:limit]
        return TradePage(trades=shown, next=shown[-1].id if len(found) > limit else None)

    @app.get("/api/equity")
    def equity(after: datetime | None = None) -> list[EquityPoint]:
        """Realized and total equity per close, oldest first; `after`: only later points."""
        return source.equity(after)

    @app.get("/api/events")
    def events(limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 200) -> list[EventOut]:
        return source.events(limit)

    @app.get("/api/decisions")
    def decisions(
        limit: Annotated[int, Query(ge=1, le=500)] = 100, after: datetime | None = None
    ) -> list[DecisionOut]:
        """Closes where a pair came near an entry, newest first, as `explain` reads them;
        `after`: only those of later closes."""
        found = source.decisions(limit)
        if after is None:
            return found
        since = _utc(after)
        return [d for d in found if _utc(d.time) > since]

    @app.get("/api/strategy")
    def strategy() -> StrategyOut:
        return source.strategy()

    @app.get("/api/scanner")
    def scanner() -> ScannerOut:
        return source.scanner()

    @app.get("/api/candles")
    def candles(
        pair: Annotated[str, Query(max_length=64)],
        limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 1000,
    ) -> list[CandleOut]:
        return source.candles(pair, limit)

    @app.post("/api/controls/pause")
    def pause(allowed: Allowed) -> ControlOut:
        controls, who = allowed
        controls.pause(who)
        return ControlOut(ok=True, message="new entries paused; exits and stops go on")

    @app.post("/api/controls/resume")
    def resume(allowed: Allowed) -> ControlOut:
        controls, who = allowed
        controls.resume(who)
        return ControlOut(ok=True, message="new entries resumed")

    @app.post("/api/controls/close/{trade_id}")
    def close_one(trade_id: int, allowed: Allowed) -> ControlOut:
        """Close one open trade, and cancel an entry order waiting to fill on its pair."""
        controls, who = allowed
        closing = controls.close_position(trade_id, who)
        if closing is None:
            raise HTTPException(404, f"no open trade #{trade_id}")
        return _closing_out(f"trade #{trade_id} closing", closing)

    @app.post("/api/controls/close-all")
    def close_all(allowed: Allowed) -> ControlOut:
        """Cancel every entry order waiting to fill, then close every open trade."""
        controls, who = allowed
        closing = controls.close_everything(who)
        return _closing_out(f"{len(closing.trades)} open trade(s) closing", closing)

    @app.post("/api/controls/stop")
    def stop(allowed: Allowed) -> ControlOut:
        controls, who = allowed
        controls.request_stop(who)
        return ControlOut(ok=True, message="stopping: no new trades; the session ends")

    @app.websocket("/api/stream")
    async def stream(socket: WebSocket) -> None:
        """Changes as they happen: {"type": "event", "event": …} for each event, then
        {"type": "trade", "trade": …} for a trade that closed; {"type": "close", "time": …}
        after each close; {"type": "store"} when a stored session changed."""
        if not _same_origin(socket):  # another site's page may not listen in
            await socket.close(code=1008)
            return
        await socket.accept()
        queue = hub.subscribe()
        poller = None
        if source.kind == "store":
            poller = asyncio.create_task(_watch_store(source, hub))
        try:
            while True:
                for message in await _outgoing(await queue.get(), source):
                    await socket.send_json(message)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            hub.unsubscribe(queue)
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller

    return app


async def _outgoing(message: dict[str, object], source: Source) -> list[dict[str, object]]:
    """A hub message as the stream sends it: an event in the API's form, and the trade a
    closing event names (so the page adds it without reading a page of trades again)."""
    event = message.get("event")
    if not isinstance(event, Event):
        return [message]
    sent: list[dict[str, object]] = [
        {"type": "event", "event": event_out(event).model_dump(mode="json")}
    ]
    trade_id = event.data.get("trade")
    if event.kind == "trade_closed" and isinstance(trade_id, int):
        which = TradeFilter(after=trade_id + 1, limit=1)
        found = await asyncio.to_thread(source.trades, which)
        if found and found[0].id == trade_id:
            sent.append({"type": "trade", "trade": found[0].model_dump(mode="json")})
    return sent


def _utc(value: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _closing_out(said: str, closing: Closing) -> ControlOut:
    """A close's answer: the trades it closes and how many waiting entries it canceled."""
    count = len(closing.canceled)
    canceled = f"; {count} entry order(s) waiting to fill canceled" if count else ""
    return ControlOut(
        ok=True, message=said + canceled, closing=[t.id for t in closing.trades], canceled=count
    )


def _same_origin(socket: WebSocket) -> bool:
    """Browsers send the page's origin with a WebSocket and do not stop a page of another
    site from opening one: accept only the dashboard's own page (or a non-browser client)."""
    origin = socket.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == socket.headers.get("host", "").lower()


async def _watch_store(source: Source, hub: Hub) -> None:
    """A stored session may be written by a session elsewhere: tell the page when its
    newest event or its last recorded close changes."""
    last = None
    while True:
        newest = await asyncio.to_thread(source.events, 1)
        status = await asyncio.to_thread(source.status, "read-only")
        mark = ((newest[-1].time, newest[-1].message) if newest else None, status.last_close)
        if last is not None and mark != last:
            hub.publish({"type": "store"})
        last = mark
        await asyncio.sleep(STORE_POLL_SECONDS)
