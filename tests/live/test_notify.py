"""Notifiers: the log line, the fan-out, the environment rules, and Telegram end to end.

Telegram tests run the real python-telegram-bot client against TelegramStandin on
127.0.0.1, with short poll and retry times so the whole file stays fast.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest

from kinetic_rules.engine.orders import Event, EventKind
from kinetic_rules.errors import ConfigError
from kinetic_rules.live.notify import (
    CHAT_ENV,
    TOKEN_ENV,
    LogNotifier,
    MultiNotifier,
    event_text,
    hide_in_logs,
    notifier_from_env,
)
from kinetic_rules.live.telegram import STOP_REPLY, StrangerLog, TelegramNotifier
from tests.standin.telegram import TOKEN, TelegramStandin

CHAT = 4242
STRANGER = 777
T = pd.Timestamp("2024-03-04 10:05", tz="UTC")
CLOSED = Event(
    "trade_closed",
    T,
    "Closed SOL/USDT long at 150.00 (trend_break)",
    {"pair": "SOL/USDT", "profit": 4.8, "profit_ratio": 0.0331, "stake_currency": "USDT"},
)
ALL_KINDS: list[EventKind] = [
    "started", "stopped", "trade_opened", "trade_closed", "order_rejected",
    "order_timeout", "fail_safe_entered", "fail_safe_left", "error",
]  # fmt: skip


class FakeControls:
    """Thread-safe, as the notifier's thread calls it."""

    def __init__(self) -> None:
        self.stops = 0
        self.stopped = threading.Event()
        self.status = "SOL/USDT long 145.20 +1.2% stop 140.00"
        self.asked: list[tuple[str, str]] = []

    def status_text(self) -> str:
        return self.status

    def profit_text(self) -> str:
        return "Today +12.00 USDT; total +80.00 USDT; open +3.00 USDT"

    def request_stop(self, who: str = "telegram") -> None:
        self.stops += 1
        self.stopped.set()

    def pause(self, who: str) -> None:
        self.asked.append(("pause", who))

    def resume(self, who: str) -> None:
        self.asked.append(("resume", who))

    def close_all(self, who: str) -> int:
        self.asked.append(("close_all", who))
        return 2


def event(kind: EventKind, message: str = "Something happened") -> Event:
    return Event(kind, T, message)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def assert_stopped_in_time(notifier: TelegramNotifier, caplog: pytest.LogCaptureFixture) -> None:
    """close() returned because the notifier's thread ended within close_timeout, not
    because close() gave up waiting on it (it logs that and leaves the thread behind)."""
    assert not notifier._thread.is_alive()
    assert "did not stop in time" not in caplog.text


# --- texts, the log and the fan-out ---------------------------------------------------------


def test_closed_trade_text_has_profit_in_currency_and_percent() -> None:
    assert event_text(CLOSED) == (
        "Trade closed (2024-03-04 10:05 UTC)\n"
        "Closed SOL/USDT long at 150.00 (trend_break)\n"
        "Profit: +4.80 USDT (+3.31%)"
    )
    bare = Event("trade_closed", T, "Closed SOL/USDT long at 150.00")
    assert "Profit" not in event_text(bare)
    only_ratio = Event("trade_closed", T, "Closed", {"profit_ratio": -0.012})
    assert event_text(only_ratio).endswith("Profit: -1.20%")


def test_every_kind_has_a_title_and_naive_times_are_utc() -> None:
    for kind in ALL_KINDS:
        first, second = event_text(Event(kind, pd.Timestamp("2024-03-04 10:05"), "x")).split("\n")
        assert first.endswith("(2024-03-04 10:05 UTC)") and not first.startswith(kind)
        assert second == "x"


def test_log_notifier_writes_one_line_per_event(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kinetic_rules.live")
    notifier = LogNotifier()
    notifier.notify(event("trade_opened", "Opened SOL/USDT\nlong at 145.20"))
    notifier.notify(CLOSED)
    notifier.notify(event("error", "Exchange said no"))
    notifier.close()
    records = [r for r in caplog.records if r.name == "kinetic_rules.live"]
    assert [r.getMessage() for r in records] == [
        "trade_opened: Opened SOL/USDT long at 145.20",
        "trade_closed: Closed SOL/USDT long at 150.00 (trend_break) | profit +4.80 USDT (+3.31%)",
        "error: Exchange said no",
    ]
    assert [r.levelno for r in records] == [logging.INFO, logging.INFO, logging.ERROR]


def test_multi_notifier_keeps_delivering_when_one_fails(caplog: pytest.LogCaptureFixture) -> None:
    got: list[Event] = []

    class Broken:
        def notify(self, event: Event) -> None:
            raise RuntimeError("boom")

        def close(self) -> None:
            raise RuntimeError("boom")

    class Collect:
        def notify(self, event: Event) -> None:
            got.append(event)

        def close(self) -> None:
            got.append(event("stopped", "closed"))

    multi = MultiNotifier([Broken(), Collect()])
    multi.notify(CLOSED)
    multi.close()
    assert got[0] is CLOSED and got[1].message == "closed"
    assert "Broken failed to deliver a trade_closed event" in caplog.text


# --- configuration from the environment -----------------------------------------------------


def test_no_telegram_without_variables() -> None:
    assert notifier_from_env(FakeControls(), {}) is None
    assert notifier_from_env(FakeControls(), {TOKEN_ENV: " ", CHAT_ENV: ""}) is None


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({TOKEN_ENV: TOKEN}, f"{TOKEN_ENV} is set but {CHAT_ENV} is not"),
        ({CHAT_ENV: "42"}, f"{CHAT_ENV} is set but {TOKEN_ENV} is not"),
        ({TOKEN_ENV: TOKEN, CHAT_ENV: "my chat"}, "must be a whole number"),
        ({TOKEN_ENV: f'"{TOKEN}"', CHAT_ENV: "42"}, "does not look like a bot token"),
    ],
)
def test_half_configured_telegram_is_a_config_error(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as caught:
        notifier_from_env(FakeControls(), env)
    assert TOKEN not in str(caught.value)


def test_both_variables_give_a_working_telegram_notifier() -> None:
    with TelegramStandin() as telegram:
        env = {TOKEN_ENV: TOKEN, CHAT_ENV: str(-100 * CHAT)}
        notifier = notifier_from_env(FakeControls(), env, base_url=telegram.url)
        assert isinstance(notifier, TelegramNotifier)
        try:
            notifier.notify(event("started", "Paper trading kinetic_empire"))
            sent = telegram.wait_for_sent(1)
        finally:
            notifier.close()
    assert sent[0].chat_id == -100 * CHAT and "Paper trading kinetic_empire" in sent[0].text


# --- Telegram end to end --------------------------------------------------------------------


@pytest.fixture
def telegram() -> Iterator[TelegramStandin]:
    with TelegramStandin() as standin:
        yield standin


@pytest.fixture
def controls() -> FakeControls:
    return FakeControls()


@pytest.fixture
def make(
    telegram: TelegramStandin, controls: FakeControls
) -> Iterator[Callable[..., TelegramNotifier]]:
    made: list[TelegramNotifier] = []

    def make(**options: Any) -> TelegramNotifier:
        settings: dict[str, Any] = {
            "base_url": telegram.url,
            "poll_timeout": 0.5,
            "request_timeout": 2.0,
            "retry_delays": (0.05, 0.1, 0.2),
            "close_timeout": 2.0,
        }
        settings.update(options)
        token = settings.pop("token", TOKEN)
        notifier = TelegramNotifier(token, CHAT, controls, **settings)
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        notifier.close()


def test_events_of_every_kind_reach_the_configured_chat(
    telegram: TelegramStandin, make: Callable[..., TelegramNotifier]
) -> None:
    notifier = make()
    events = [event(kind, f"message for {kind}") for kind in ALL_KINDS if kind != "trade_closed"]
    for item in [*events, CLOSED]:
        notifier.notify(item)
    sent = telegram.wait_for_sent(len(ALL_KINDS))
    assert {s.chat_id for s in sent} == {CHAT}
    assert [s.text for s in sent] == [event_text(e) for e in [*events, CLOSED]]
    assert sent[-1].text.endswith("Profit: +4.80 USDT (+3.31%)")
    assert all("parse_mode" not in s.params for s in sent)  # plain text, no Markdown surprises


def test_a_secret_in_an_event_never_reaches_the_chat(
    telegram: TelegramStandin, make: Callable[..., TelegramNotifier]
) -> None:
    notifier = make()
    notifier.notify(event("error", "store postgresql://bot:s3cr3t-pass@db.local/trades failed"))
    (sent,) = telegram.wait_for_sent(1)
    assert "s3cr3t-pass" not in sent.text and "db.local/trades failed" in sent.text


def test_status_and_profit_answer_with_the_controls_text(
    telegram: TelegramStandin, make: Callable[..., TelegramNotifier], controls: FakeControls
) -> None:
    make()
    telegram.wait_for_polling()
    telegram.push_text(CHAT, "/status")
    telegram.push_text(CHAT, "/profit@kinetic_bot")
    telegram.push_text(CHAT, "/nonsense")
    sent = telegram.wait_for_sent(3)
    assert [s.text for s in sent[:2]] == [controls.status_text(), controls.profit_text()]
    assert sent[2].text.startswith("Commands:") and "/stop" in sent[2].text
    assert {s.chat_id for s in sent} == {CHAT}


def test_stop_replies_then_requests_a_stop_once(
    telegram: TelegramStandin, make: Callable[..., TelegramNotifier], controls: FakeControls
) -> None:
    make()
    telegram.wait_for_polling()
    telegram.push_text(CHAT, "/stop")
    telegram.push_text(CHAT, "/stop")
    sent = telegram.wait_for_sent(2)
    assert controls.stopped.wait(2)
    assert [s.text for s in sent] == [STOP_REPLY, "Already stopping."]
    assert controls.stops == 1


def test_pause_resume_and_a_confirmed_close_all_reach_the_controls_with_who_asked(
    telegram: TelegramStandin, make: Callable[..., TelegramNotifier], controls: FakeControls
) -> None:
    make()
    telegram.wait_for_polling()
    telegram.push_text(CHAT, "/pause")
    telegram.push_text(CHAT, "/confirm")  # nothing asked yet: nothing closes
    telegram.push_text(CHAT, "/closeall")
    telegram.push_text(CHAT, "/confirm")
    telegram.push_text(CHAT, "/confirm")  # a second confirm finds nothing to confirm
    telegram.push_text(CHAT, "/resume")
    sent = [s.text for s in telegram.wait_for_sent(7)]
    assert sent[0].startswith("Paused: no new entries")
    assert sent[1].startswith("Nothing to confirm")
    assert sent[2].startswith(
        "Cancel the entry orders waiting to fill and close every open trade at market? "
        "Send /confirm"
    )
    assert sent[3:5] == ["Closing all open trades.", "2 open trade(s) closing."]
    assert sent[5].startswith("Nothing to confirm")
    assert sent[6].startswith("Resumed")
    who = "telegram user 4242"  # the stand-in's user has no @username
    assert controls.asked == [("pause", who), ("close_all", who), ("resume", who)]


def test_controls_may_close_the_notifier_from_a_command(
    telegram: TelegramStandin, make: Callable[..., TelegramNotifier], controls: FakeControls
) -> None:
    notifier = make()
    controls.request_stop = lambda who="": notifier.close()  # type: ignore[method-assign]
    telegram.wait_for_polling()
    telegram.push_text(CHAT, "/stop")
    assert telegram.wait_for_sent(1)[0].text == STOP_REPLY  # queued before the stop: delivered
    notifier.close()  # from the test's thread too: waits for the notifier's thread to end


def test_other_chats_are_ignored_and_logged_by_command_only(
    telegram: TelegramStandin,
    make: Callable[..., TelegramNotifier],
    controls: FakeControls,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="kinetic_rules.live")
    make()
    telegram.wait_for_polling()
    telegram.push_text(STRANGER, "/stop now please, password hunter2")
    telegram.push_text(-STRANGER, "/status")
    telegram.push_text(CHAT, "/profit")  # updates are handled in order: this one comes last
    sent = telegram.wait_for_sent(1)
    assert controls.stops == 0 and not controls.stopped.is_set()
    assert [(s.chat_id, s.text) for s in sent] == [(CHAT, controls.profit_text())]
    ours = [r.getMessage() for r in caplog.records if r.name == "kinetic_rules.live"]
    assert f"Telegram: ignored /stop from chat {STRANGER} (only chat {CHAT} is answered)" in ours
    assert f"Telegram: ignored /status from chat {-STRANGER} (only chat {CHAT} is answered)" in ours
    assert not any("hunter2" in line for line in ours)


def test_a_burst_of_500s_is_retried_until_delivered(
    telegram: TelegramStandin, make: Callable[..., TelegramNotifier]
) -> None:
    notifier = make()
    telegram.fail_next("sendMessage", 3, status=500)
    notifier.notify(CLOSED)  # returns at once; the retries happen on the notifier's thread
    sent = telegram.wait_for_sent(1)
    assert sent[0].text == event_text(CLOSED)
    assert telegram.calls("sendMessage") == 4


def test_telegram_down_at_start_is_retried(
    telegram: TelegramStandin, make: Callable[..., TelegramNotifier]
) -> None:
    telegram.fail_next("getMe", 2, status=502)
    make().notify(event("started"))
    assert telegram.wait_for_sent(1)[0].text.endswith("Something happened")
    telegram.wait_for_polling()
    assert telegram.calls("getMe") == 3


def test_a_vanished_server_never_raises_and_close_is_prompt(
    telegram: TelegramStandin,
    make: Callable[..., TelegramNotifier],
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = make(close_timeout=1.0, retry_delays=[30])
    telegram.wait_for_polling()
    telegram.stop()
    for _ in range(3):
        notifier.notify(event("fail_safe_entered", "Exchange unreachable"))
    notifier.close()  # gives up on the 30 s retry instead of sleeping it out
    assert_stopped_in_time(notifier, caplog)
    notifier.notify(event("stopped"))  # after close: dropped with a warning, no exception
    assert "Telegram notifier is closed; not sent: Bot stopped" in caplog.text


def test_close_returns_promptly_while_telegram_hangs(
    telegram: TelegramStandin,
    make: Callable[..., TelegramNotifier],
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = make(close_timeout=1.0)
    telegram.wait_for_polling()
    telegram.hang_next("sendMessage", 5, seconds=30)
    notifier.notify(event("error", "one"))
    notifier.notify(event("error", "two"))
    wait_until(lambda: telegram.faults.pending < 5)  # the first send is hanging now
    notifier.close()
    assert_stopped_in_time(notifier, caplog)
    assert telegram.sent == []  # close did not wait for the 30 s answer
    assert "2 message(s) not delivered" in caplog.text


def test_a_full_queue_drops_with_a_warning(
    telegram: TelegramStandin,
    make: Callable[..., TelegramNotifier],
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = make(queue_size=2, close_timeout=0.5)
    telegram.hang_next("sendMessage", 10, seconds=30)
    for n in range(6):
        notifier.notify(event("trade_opened", f"Opened pair {n}"))  # never blocks
    assert "Telegram queue is full; dropped: Trade opened" in caplog.text


def test_command_failures_are_answered_not_raised(
    telegram: TelegramStandin, make: Callable[..., TelegramNotifier], controls: FakeControls
) -> None:
    def broken() -> str:
        raise RuntimeError("database locked")

    controls.status_text = broken  # type: ignore[method-assign]
    make()
    telegram.wait_for_polling()
    telegram.push_text(CHAT, "/status")
    assert telegram.wait_for_sent(1)[0].text == "Could not get the status: see the bot's log."


# --- the token stays secret -----------------------------------------------------------------


def test_the_token_never_reaches_the_logs(
    telegram: TelegramStandin,
    make: Callable[..., TelegramNotifier],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs full URLs (with the token) from INFO on
    notifier = make()
    telegram.wait_for_polling()
    telegram.fail_next("sendMessage", 1, status=500)
    notifier.notify(CLOSED)
    telegram.push_text(CHAT, "/status")
    telegram.wait_for_sent(2)
    notifier.close()
    rejected = make(token="987654:WrongTokenForTheStandin")  # 401 from the stand-in
    wait_until(lambda: "rejected the bot token" in caplog.text)
    rejected.close()
    assert "/bot***/getUpdates" in caplog.text  # the URL lines are there, masked
    for secret in (TOKEN, "987654:WrongTokenForTheStandin", "123456789%3AAAStandin"):
        assert secret not in caplog.text
        for record in caplog.records:
            assert secret not in record.getMessage() and secret not in (record.exc_text or "")
    assert TOKEN not in repr(notifier)


def test_the_mask_covers_any_logger_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "555:SecretOnlyForThisTest"
    hide_in_logs(secret)
    logging.getLogger("httpcore.http11").debug("GET %s", f"http://x/bot{secret}/getMe")
    try:
        raise ValueError(f"The token `{secret}` was rejected by the server.")
    except ValueError:
        logging.getLogger("some.library").exception("failed")
    assert secret not in caplog.text
    assert "http://x/bot***/getMe" in caplog.text and "The token `***` was rejected" in caplog.text


def test_a_flood_of_strangers_is_logged_a_few_lines_a_minute_with_a_count() -> None:
    now = [0.0]
    log = StrangerLog(every=60.0, burst=3, clock=lambda: now[0])
    assert log.admit(STRANGER) == 0
    assert [log.admit(STRANGER) for _ in range(1000)] == [None] * 1000  # same chat: held back
    assert [log.admit(chat) for chat in range(1, 4)] == [1000, 0, None]  # the burst is spent
    assert [log.admit(chat) for chat in range(100, 10_000)] == [None] * 9_900
    now[0] = 61.0
    assert log.admit(STRANGER) == 1 + 9_900  # the next line says how many were not logged
    assert log.admit(STRANGER) is None
    assert len(log._last_by_chat) <= 3 * 2  # a flood of chats does not grow the memory
