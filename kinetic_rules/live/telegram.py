"""TelegramNotifier: alerts to one chat, and the commands /status, /profit, /stop, /pause,
/resume and /closeall (confirmed by /confirm within a minute) from it.

The runtime is synchronous and python-telegram-bot is asyncio, so the notifier owns a
thread with its own event loop. `notify()` only puts text on a bounded queue and returns;
that thread sends it (retrying with backoff) and long-polls Telegram for commands.

Threads: command handlers call `Controls.status_text()`, `profit_text()` and
`request_stop()` on the notifier's thread, so Controls implementations must be
thread-safe, and should answer quickly (a slow answer delays alerts).

Nothing here raises into the runtime: a Telegram outage, a hung server or a rejected token
is logged (with the token masked) and trading goes on. Only the configured chat is
answered; anything from another chat is dropped and logged by command name only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import queue
import re
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from kinetic_rules.engine.orders import Event
from kinetic_rules.errors import ConfigError
from kinetic_rules.live.events import Controls
from kinetic_rules.live.notify import event_text, hide_in_logs
from kinetic_rules.secrets import mask

logger = logging.getLogger("kinetic_rules.live")

STOP_REPLY = "Stopping: no new trades; open positions keep their exchange stops."
HELP = (
    "Commands:\n"
    "/status - open trades: pair, side, entry, profit, stop\n"
    "/profit - closed profit today and in total, open profit\n"
    "/stop - stop opening trades and shut down (exchange stops stay)\n"
    "/pause - no new entries (exits and stops go on); /resume - entries again\n"
    "/closeall - close every open trade at market (then /confirm within 60 s)"
)
CONFIRM_SECONDS = 60.0  # /closeall waits this long for /confirm
COMMANDS = [
    BotCommand("status", "Open trades"),
    BotCommand("profit", "Profit today, in total, and open"),
    BotCommand("stop", "Stop opening trades and shut down"),
    BotCommand("pause", "No new entries until /resume"),
    BotCommand("resume", "Make new entries again"),
    BotCommand("closeall", "Close every open trade (asks for /confirm)"),
    BotCommand("help", "What this bot answers"),
]
MAX_TEXT = 4096  # Telegram's limit for one message
DEFAULT_API = "https://api.telegram.org"
_Context = ContextTypes.DEFAULT_TYPE
_App: TypeAlias = "Application[Any, Any, Any, Any, Any, None]"


class TelegramNotifier:
    """Sends events to `chat_id` and answers its commands; see the module docstring."""

    def __init__(
        self,
        token: str,
        chat_id: int,
        controls: Controls,
        *,
        base_url: str | None = None,
        poll_timeout: float = 10.0,
        request_timeout: float = 10.0,
        retry_delays: Sequence[float] = (1, 2, 4, 8, 15, 30, 60),
        queue_size: int = 100,
        close_timeout: float = 5.0,
    ) -> None:
        if not token:
            raise ConfigError("the Telegram bot token is empty")
        hide_in_logs(token)  # before anything can log a URL
        self._token = token
        self.chat_id = chat_id
        self._controls = controls
        self._api = (base_url or DEFAULT_API).rstrip("/")
        self._poll_timeout = poll_timeout
        self._request_timeout = request_timeout
        self._retry_delays = tuple(retry_delays) or (1.0,)
        self._close_timeout = close_timeout
        self._outbox: queue.Queue[str] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._stop_requested = False
        self._close_all_asked: float | None = None  # monotonic time of an unconfirmed /closeall
        self._disabled = False  # the token was rejected: nothing will ever get through
        self._in_flight = False
        self._strangers = StrangerLog()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="telegram-notifier", daemon=True
        )
        self._thread.start()
        ready.wait(timeout=5)

    def __repr__(self) -> str:
        return f"TelegramNotifier(chat_id={self.chat_id}, api={self._api!r})"

    # --- called from the runtime's thread ------------------------------------------------------

    def notify(self, event: Event) -> None:
        """Queue the event's message; never blocks on Telegram and never raises."""
        try:
            self.send_text(event_text(event))
        except Exception:
            logger.exception("Telegram: could not queue a %s event", event.kind)

    def send_text(self, text: str) -> None:
        """Queue plain text for the configured chat (dropped, with a warning, when full)."""
        if self._closing.is_set():
            logger.warning("Telegram notifier is closed; not sent: %s", _head(text))
            return
        try:
            self._outbox.put_nowait(mask(text)[:MAX_TEXT])
        except queue.Full:
            logger.warning("Telegram queue is full; dropped: %s", _head(text))
            return
        self._call_soon(lambda: self._wake.set() if self._wake else None)

    def close(self) -> None:
        """Deliver what is queued if Telegram allows, then stop; returns within close_timeout."""
        if not self._closing.is_set():
            self._closing.set()
            self._call_soon(lambda: self._stop.set() if self._stop else None)
        if threading.current_thread() is self._thread:
            return  # called from a command (Controls.request_stop): it stops once we return
        self._thread.join(timeout=self._close_timeout + 0.5)
        if self._thread.is_alive():
            logger.warning("Telegram notifier did not stop in time; leaving its thread behind")

    def _call_soon(self, callback: Callable[[], object]) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: the notifier has stopped
            loop.call_soon_threadsafe(callback)

    # --- the notifier's thread -----------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._main(ready))
        except Exception:
            logger.exception("Telegram notifier stopped unexpectedly")
        finally:
            ready.set()

    async def _main(self, ready: threading.Event) -> None:
        self._wake, self._stop = asyncio.Event(), asyncio.Event()
        self._loop = asyncio.get_running_loop()
        ready.set()
        if self._closing.is_set():
            self._stop.set()
        app = self._build()
        sender = asyncio.create_task(self._send_loop(app.bot), name="telegram-send")
        starter = asyncio.create_task(self._start(app), name="telegram-start")
        await self._stop.wait()
        self._wake.set()  # the sender drains the queue and returns
        budget = self._close_timeout * 0.6
        done, _ = await asyncio.wait([sender], timeout=budget)
        if not done:
            sender.cancel()
            left = self._outbox.qsize() + self._in_flight
            logger.warning("Telegram notifier closing: %d message(s) not delivered", left)
        starter.cancel()
        await self._shutdown(app, self._close_timeout * 0.35)

    def _build(self) -> _App:
        timeout = self._request_timeout
        app = (
            Application.builder()
            .token(self._token)
            .base_url(f"{self._api}/bot")
            .base_file_url(f"{self._api}/file/bot")
            .job_queue(None)
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .write_timeout(timeout)
            .pool_timeout(timeout)
            .get_updates_connect_timeout(timeout)
            .get_updates_read_timeout(timeout)  # PTB adds the long-poll timeout to this
            .build()
        )
        app.add_handler(TypeHandler(Update, self._gate), group=-1)
        only_ours = filters.Chat(chat_id=self.chat_id)
        app.add_handler(CommandHandler("status", self._on_status, filters=only_ours))
        app.add_handler(CommandHandler("profit", self._on_profit, filters=only_ours))
        app.add_handler(CommandHandler("stop", self._on_stop, filters=only_ours))
        app.add_handler(CommandHandler("pause", self._on_pause, filters=only_ours))
        app.add_handler(CommandHandler("resume", self._on_resume, filters=only_ours))
        app.add_handler(CommandHandler("closeall", self._on_close_all, filters=only_ours))
        app.add_handler(CommandHandler("confirm", self._on_confirm, filters=only_ours))
        app.add_handler(MessageHandler(filters.COMMAND & only_ours, self._on_help))
        app.add_error_handler(self._on_error)
        return app

    async def _start(self, app: _App) -> None:
        """Connect (retrying while Telegram is unreachable), then poll for commands."""
        for attempt in itertools.count():
            try:
                await app.initialize()  # getMe: also checks the token
                await self._set_commands(app)
                await app.updater.start_polling(  # type: ignore[union-attr]
                    timeout=dt.timedelta(seconds=self._poll_timeout),
                    allowed_updates=["message"],
                    drop_pending_updates=True,  # commands sent while the bot was down expire
                    error_callback=self._on_poll_error,
                )
                await app.start()
                logger.info("Telegram: connected; answering chat %s", self.chat_id)
                return
            except InvalidToken:
                self._disabled = True
                logger.error("Telegram rejected the bot token; Telegram notifications are off")
                return
            except TelegramError as error:
                delay = self._delay(attempt)
                level = logging.WARNING if attempt % 10 == 0 else logging.DEBUG
                logger.log(level, "Telegram: cannot connect (%s); retrying in %gs", error, delay)
                await asyncio.sleep(delay)
            except Exception:  # a bug, not an outage: say so once, keep the sender going
                logger.exception("Telegram: could not start polling for commands")
                return

    async def _set_commands(self, app: _App) -> None:
        """The command menu, shown in the configured chat only; cosmetic, so failure is fine."""
        try:
            await app.bot.set_my_commands(COMMANDS, scope=BotCommandScopeChat(self.chat_id))
        except TelegramError as error:
            logger.info("Telegram: could not set the command menu (%s)", error)

    async def _shutdown(self, app: _App, budget: float) -> None:
        """Stop polling, then close the HTTP clients; each step is cut off at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        steps: list[Callable[[], Awaitable[object]]] = []
        if app.updater is not None and app.updater.running:
            steps.append(app.updater.stop)  # may wait out PTB's polling backoff: hence the cut-off
        if app.running:
            steps.append(app.stop)
        # app.shutdown() skips the bot when initialize() never succeeded: close it anyway
        steps += [app.shutdown, app.bot.shutdown]
        for step in steps:
            try:
                await asyncio.wait_for(step(), max(0.1, deadline - loop.time()))
            except Exception as error:
                logger.debug("Telegram: shutdown step %s failed: %r", step.__name__, error)

    def _delay(self, attempt: int) -> float:
        return self._retry_delays[min(attempt, len(self._retry_delays) - 1)]

    # --- sending -------------------------------------------------------------------------------

    async def _send_loop(self, bot: Any) -> None:
        assert self._wake is not None and self._stop is not None
        while True:
            self._wake.clear()
            while True:
                try:
                    text = self._outbox.get_nowait()
                except queue.Empty:
                    break
                self._in_flight = True
                await self._deliver(bot, text)
                self._in_flight = False
            if self._stop.is_set():
                return
            await self._wake.wait()

    async def _deliver(self, bot: Any, text: str) -> None:
        """Send with retries on network trouble; drop (logged) what Telegram refuses."""
        attempts = len(self._retry_delays) + 1
        for attempt in range(attempts):
            if self._disabled:
                return
            try:
                await bot.send_message(chat_id=self.chat_id, text=text)
                return
            except RetryAfter as error:
                # `error.retry_after` warns of a type change in PTB 22; the timedelta is stable
                wait: dt.timedelta = error._retry_after
                delay = min(wait.total_seconds(), 60.0)
            except BadRequest as error:  # a NetworkError, but retrying cannot help
                logger.error("Telegram refused a message (%s): %s", error, _head(text))
                return
            except ChatMigrated as error:
                logger.error(
                    "Telegram: the group became a supergroup; set KINETIC_TELEGRAM_CHAT_ID=%s",
                    error.new_chat_id,
                )
                return
            except (InvalidToken, Forbidden) as error:
                self._disabled = isinstance(error, InvalidToken)
                logger.error("Telegram refused to deliver (%s); check the token and chat", error)
                return
            except NetworkError as error:  # 5xx, timeouts, connection refused
                delay = self._delay(attempt)
                level = logging.WARNING if attempt == 0 else logging.DEBUG
                logger.log(level, "Telegram: send failed (%s); will retry", error)
            except Exception:
                logger.exception("Telegram: could not send %s", _head(text))
                return
            if attempt + 1 < attempts:
                await asyncio.sleep(delay)
        logger.warning("Telegram: gave up after %d attempts: %s", attempts, _head(text))

    # --- commands ------------------------------------------------------------------------------

    async def _gate(self, update: object, context: _Context) -> None:
        """Let through only updates from the configured chat; log others by command name."""
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is not None and chat.id == self.chat_id:
            return
        message = update.effective_message if isinstance(update, Update) else None
        unlogged = self._strangers.admit(chat.id if chat else None)
        if unlogged is not None:
            logger.warning(
                "Telegram: ignored %s from chat %s (only chat %s is answered)%s",
                _command_name(message.text if message else None),
                chat.id if chat else "unknown",
                self.chat_id,
                f"; {unlogged} more ignored messages not logged" if unlogged else "",
            )
        raise ApplicationHandlerStop

    async def _on_status(self, update: Update, context: _Context) -> None:
        self.send_text(_ask(self._controls.status_text, "status"))

    async def _on_profit(self, update: Update, context: _Context) -> None:
        self.send_text(_ask(self._controls.profit_text, "profit"))

    async def _on_stop(self, update: Update, context: _Context) -> None:
        if self._stop_requested:
            self.send_text("Already stopping.")
            return
        self._stop_requested = True
        self.send_text(STOP_REPLY)
        logger.warning("Telegram: /stop from chat %s", self.chat_id)
        try:
            self._controls.request_stop(_who(update))
        except Exception:
            logger.exception("Telegram: /stop failed")
            self.send_text("The stop request failed: see the bot's log.")

    async def _on_pause(self, update: Update, context: _Context) -> None:
        self.send_text(
            _act(
                lambda: self._controls.pause(_who(update)),
                "pause",
                "Paused: no new entries; exits and stops go on.",
            )
        )

    async def _on_resume(self, update: Update, context: _Context) -> None:
        self.send_text(
            _act(
                lambda: self._controls.resume(_who(update)), "resume", "Resumed: new entries again."
            )
        )

    async def _on_close_all(self, update: Update, context: _Context) -> None:
        self._close_all_asked = time.monotonic()
        self.send_text(
            "Cancel the entry orders waiting to fill and close every open trade at market? "
            f"Send /confirm within {CONFIRM_SECONDS:g} s."
        )

    async def _on_confirm(self, update: Update, context: _Context) -> None:
        asked, self._close_all_asked = self._close_all_asked, None
        if asked is None or time.monotonic() - asked > CONFIRM_SECONDS:
            self.send_text("Nothing to confirm (send /closeall first; it waits 60 s).")
            return
        closed: list[int] = []

        def close() -> None:
            closed.append(self._controls.close_all(_who(update)))

        self.send_text(_act(close, "closeall", "Closing all open trades."))
        if closed:
            self.send_text(f"{closed[0]} open trade(s) closing.")

    async def _on_help(self, update: Update, context: _Context) -> None:
        self.send_text(HELP)

    async def _on_error(self, update: object, context: _Context) -> None:
        logger.error("Telegram: error handling an update", exc_info=context.error)

    def _on_poll_error(self, error: TelegramError) -> None:
        logger.warning("Telegram: polling for commands failed (%s); retrying", error)


def _ask(produce: Callable[[], str], what: str) -> str:
    try:
        return produce() or f"No {what} to show."
    except Exception:
        logger.exception("Telegram: /%s failed", what)
        return f"Could not get the {what}: see the bot's log."


def _act(action: Callable[[], object], what: str, reply: str) -> str:
    try:
        action()
    except Exception:
        logger.exception("Telegram: /%s failed", what)
        return f"/{what} failed: see the bot's log."
    return reply


def _who(update: Update) -> str:
    """Who asked, for the event log: the sender's @username, else their user id."""
    user = update.effective_user
    if user is None:
        return "telegram"
    return f"telegram @{user.username}" if user.username else f"telegram user {user.id}"


class StrangerLog:
    """Rations log lines about ignored chats, so a flood of strangers cannot fill the disk.

    Each chat is logged at most once per `every` seconds, and all chats together at most
    `burst` times per `every`; what is held back is counted into the next line logged.
    """

    def __init__(
        self, every: float = 60.0, burst: int = 10, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._every = every
        self._burst = burst
        self._clock = clock
        self._last_by_chat: dict[int | None, float] = {}
        self._window_start = -every
        self._logged_in_window = 0
        self._held_back = 0

    def admit(self, chat_id: int | None) -> int | None:
        """The count held back since the last line if this one may be logged, else None."""
        now = self._clock()
        if now - self._window_start >= self._every:
            self._window_start, self._logged_in_window = now, 0
            # chats silent for a whole window are forgotten: the map stays small
            self._last_by_chat = {
                chat: at for chat, at in self._last_by_chat.items() if now - at < self._every
            }
        last = self._last_by_chat.get(chat_id)
        if (last is not None and now - last < self._every) or (
            self._logged_in_window >= self._burst
        ):
            self._held_back += 1
            return None
        self._last_by_chat[chat_id] = now
        self._logged_in_window += 1
        held_back, self._held_back = self._held_back, 0
        return held_back


def _command_name(text: str | None) -> str:
    """`/stop` from `/stop@bot now`; the rest of a stranger's message is not ours to log."""
    match = re.match(r"/([A-Za-z0-9_]{1,32})", text or "")
    return f"/{match.group(1)}" if match else "a message"


def _head(text: str) -> str:
    first = text.split("\n", 1)[0]
    return first if len(first) <= 80 else first[:77] + "..."
