"""TelegramStandin: a local Bot API server that python-telegram-bot talks to over HTTP.

    with TelegramStandin() as telegram:
        notifier = TelegramNotifier(TOKEN, CHAT, controls, base_url=telegram.url)
        telegram.wait_for_polling()               # the bot is fetching updates now
        telegram.push_text(CHAT, "/status")       # a user writes to the bot
        telegram.wait_for_sent(1)                 # what the bot sent: chat ids and texts
        telegram.fail_next("sendMessage", 3)      # the next three sends answer 500

It serves the methods PTB calls for a polling bot (getMe, deleteWebhook, getUpdates with
long polling, sendMessage, setMyCommands) at `/bot<token>/<method>`, answers in the Bot
API's JSON shape, and reuses the exchange stand-in's HTTP server and fault queue.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.standin.faults import Fault, Faults
from tests.standin.router import LoopbackServer, Request, Response, Router

TOKEN = "123456789:AAStandinToken_for-tests0123456789x"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "Kinetic", "username": "kinetic_bot"}
MAX_LONG_POLL = 5.0  # seconds; a cap so a test can never hang on a forgotten poll


@dataclass(frozen=True)
class Sent:
    chat_id: int
    text: str
    params: dict[str, str]


def _error(status: int, description: str) -> Response:
    return Response(status, {"ok": False, "error_code": status, "description": description})


def _ok(result: object) -> Response:
    return Response(200, {"ok": True, "result": result})


def _chat(chat_id: int) -> dict[str, object]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Tester"}
    return {"id": chat_id, "type": "group", "title": "Some group"}


class _BotRouter(Router):
    """Routes `/bot<token>/<method>` to the stand-in's methods; a wrong token is a 401."""

    def __init__(self, standin: TelegramStandin) -> None:
        super().__init__(standin.faults)
        self.standin = standin

    def _handle(self, request: Request) -> Response:
        _, _, rest = request.path.partition("/bot")
        token, _, method = rest.partition("/")
        if not request.path.startswith("/bot") or not method:
            return _error(404, "Not Found")
        if token != self.standin.token:
            return _error(401, "Unauthorized")
        handler = getattr(self.standin, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        result: Response = handler(request.params)
        return result


class TelegramStandin(LoopbackServer):
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.faults = Faults()
        self.router = _BotRouter(self)
        self._cond = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1000
        self._next_message_id = 1
        self._sent: list[Sent] = []
        self._polls = 0

    def _waking(self) -> None:
        """Long polls wait on the condition: release them, as Telegram going away would."""
        with self._cond:
            self._cond.notify_all()

    # --- what a test does -----------------------------------------------------------------

    def push_text(self, chat_id: int, text: str, *, user_id: int = 4242) -> int:
        """A user writes `text` in `chat_id`; commands carry the entity Telegram adds."""
        with self._cond:
            message: dict[str, Any] = {
                "message_id": self._take_message_id(),
                "date": int(time.time()),
                "chat": _chat(chat_id),
                "from": {"id": user_id, "is_bot": False, "first_name": "Tester"},
                "text": text,
            }
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self.push_update({"message": message})

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (its update_id is assigned here) for the next getUpdates."""
        with self._cond:
            update_id = self._next_update_id
            self._next_update_id += 1
            self._updates.append({"update_id": update_id, **update})
            self._cond.notify_all()
            return update_id

    def fail_next(self, method: str, n: int = 1, *, status: int = 500) -> None:
        """The next `n` calls of `method` fail with a Telegram-shaped error."""
        body = json.dumps({"ok": False, "error_code": status, "description": "Internal error"})
        self.faults.add(Fault(n, self._path(method), status=status, body=body))

    def hang_next(self, method: str, n: int = 1, *, seconds: float = 30.0) -> None:
        """The next `n` calls of `method` answer only after `seconds` (or when stopped)."""
        self.faults.delay_next(n, seconds=seconds, path=self._path(method))

    @property
    def sent(self) -> list[Sent]:
        with self._cond:
            return list(self._sent)

    def wait_for_sent(self, count: int, timeout: float = 30.0) -> list[Sent]:
        """At least `count` sent messages, or AssertionError with what was sent."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._sent) >= count, timeout)
            if len(self._sent) < count:
                raise AssertionError(f"expected {count} messages, got {self._sent!r}")
            return list(self._sent)

    def wait_for_polling(self, timeout: float = 30.0) -> None:
        """Until the bot has asked for updates at least once (after its startup calls)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._polls > 0, timeout):
                raise AssertionError("the bot never polled for updates")

    def calls(self, method: str) -> int:
        return len(self.router.requests(self._path(method)))

    @property
    def pending_updates(self) -> int:
        with self._cond:
            return len(self._updates)

    def _path(self, method: str) -> str:
        return f"/bot{self.token}/{method}"

    def _take_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id

    # --- Bot API methods (called on server threads) ------------------------------------------

    def _api_getMe(self, params: dict[str, str]) -> Response:
        return _ok({**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False})

    def _api_deleteWebhook(self, params: dict[str, str]) -> Response:
        if params.get("drop_pending_updates") == "true":
            with self._cond:
                self._updates.clear()
        return _ok(True)

    def _api_setMyCommands(self, params: dict[str, str]) -> Response:
        return _ok(True)

    def _api_getUpdates(self, params: dict[str, str]) -> Response:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), MAX_LONG_POLL)
        deadline = time.monotonic() + timeout
        with self._cond:
            if offset:  # Telegram forgets every update below the offset: they are confirmed
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self._polls += 1
            self._cond.notify_all()
            while not self._updates and not self.router.stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return _ok(list(self._updates))

    def _api_sendMessage(self, params: dict[str, str]) -> Response:
        text = params.get("text", "")
        if not text:
            return _error(400, "Bad Request: message text is empty")
        chat_id = int(params["chat_id"])
        with self._cond:
            self._sent.append(Sent(chat_id, text, dict(params)))
            message_id = self._take_message_id()
            self._cond.notify_all()
        result = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": BOT_USER,
            "text": text,
        }
        return _ok(result)
