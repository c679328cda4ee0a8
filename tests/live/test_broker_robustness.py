"""Pacing, backoff, fail-safe and credentials, in simulated time against the stand-in."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import ccxt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.errors import ExchangeError
from kinetic_rules.live.broker import OrderRequest
from kinetic_rules.live.ccxt_broker import CcxtBroker, broker_from_env
from kinetic_rules.live.robust import FailSafe, Pacer, outage_text
from tests.standin import ExchangeStandin
from tests.standin.account import API_KEY, API_SECRET
from tests.standin.simtime import SimTime

PAIR = "BTC/USDT"
ACCOUNT = "/api/v3/account"


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=(PAIR,), timeframes=("15m",)) as exchange:
        exchange.clock.set("2024-03-01 00:00")
        exchange.account.deposit("USDT", 1_000)
        yield exchange


@pytest.fixture
def sim() -> SimTime:
    return SimTime()


def make_broker(standin: ExchangeStandin, sim: SimTime, **settings: Any) -> CcxtBroker:
    client = standin.ccxt_client(
        apiKey=API_KEY, secret=API_SECRET, timeout=settings.pop("timeout", 5_000)
    )
    broker = CcxtBroker(client, stake_currency="USDT", clock=sim.clock, sleep=sim.sleep, **settings)
    broker.free_balance("USDT")  # markets loaded, so each later call is one request
    sim.sleeps.clear()
    return broker


def test_requests_are_spaced_by_the_rate_limit(standin: ExchangeStandin, sim: SimTime) -> None:
    """Seed property 19, measured where ccxt hands each request to the HTTP session."""
    for spacing in (200, 500):
        broker = make_broker(standin, sim, rate_limit_ms=spacing)
        starts: list[float] = []
        broker.exchange.session.request = timed(broker.exchange.session.request, sim, starts)
        broker.place(OrderRequest("kr-1", PAIR, "long", True, "limit", 0.001, price=60_000.0))
        broker.fetch("kr-1", PAIR)
        broker.open_orders()
        broker.cancel("kr-1", PAIR)
        broker.free_balance("USDT")
        assert len(starts) == 5
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert all(gap >= spacing / 1000 - 1e-9 for gap in gaps), gaps


def timed(send: Callable[..., Any], sim: SimTime, starts: list[float]) -> Callable[..., Any]:
    def request(*args: Any, **kwargs: Any) -> Any:
        starts.append(sim.clock())
        return send(*args, **kwargs)

    return request


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1.0), min_size=1, max_size=30))
def test_the_pacer_never_lets_two_requests_closer_than_its_spacing(arrivals: list[float]) -> None:
    sim = SimTime()
    pacer = Pacer(0.2, clock=sim.clock, sleep=sim.sleep)
    starts: list[float] = []
    for idle in arrivals:
        sim.now += idle  # the caller does other work, then asks
        asked = sim.clock()
        pacer.wait()
        starts.append(sim.clock())
        earliest = asked if len(starts) == 1 else max(asked, starts[-2] + 0.2)
        assert starts[-1] == pytest.approx(earliest)  # and it waits no longer than needed
    assert all(b - a >= 0.2 - 1e-9 for a, b in itertools.pairwise(starts))


def test_429s_back_off_exponentially_up_to_a_minute(standin: ExchangeStandin, sim: SimTime) -> None:
    broker = make_broker(standin, sim, rate_limit_ms=0)
    standin.faults.rate_limit_next(7, retry_after=0, path=ACCOUNT)
    assert broker.free_balance("USDT") == 1_000
    assert sim.sleeps == [1, 2, 4, 8, 16, 32, 60]
    sim.sleeps.clear()
    standin.faults.rate_limit_next(8, retry_after=0, path=ACCOUNT)
    with pytest.raises(ExchangeError, match="gave up after 8 attempts") as error:
        broker.free_balance("USDT")
    assert error.value.temporary and not broker.fail_safe


def test_429s_honour_retry_after(standin: ExchangeStandin, sim: SimTime) -> None:
    broker = make_broker(standin, sim, rate_limit_ms=0)
    standin.faults.rate_limit_next(4, retry_after=5, path=ACCOUNT)
    broker.free_balance("USDT")
    assert sim.sleeps == [5, 5, 5, 8]


def test_timeouts_back_off_1_2_4_up_to_30_seconds(standin: ExchangeStandin, sim: SimTime) -> None:
    # Timeouts well above a loaded machine's loopback latency, delays well above those.
    broker = make_broker(standin, sim, rate_limit_ms=0, timeout=300)
    standin.faults.delay_next(7, seconds=1.0, path=ACCOUNT)
    assert broker.free_balance("USDT") == 1_000
    assert sim.sleeps == [1, 2, 4, 8, 16, 30, 30]


def test_five_minutes_of_5xx_turn_the_fail_safe_on_and_an_answer_turns_it_off(
    standin: ExchangeStandin, sim: SimTime, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[bool, str, float]] = []
    broker = make_broker(
        standin, sim, on_fail_safe=lambda on, text: calls.append((on, text, sim.clock()))
    )
    standin.faults.fail_next(10_000, status=503, path=ACCOUNT)
    first_failure = sim.clock()
    failed_calls = 0
    while not broker.fail_safe:
        with pytest.raises(ExchangeError) as error:
            broker.free_balance("USDT")
        assert error.value.temporary
        failed_calls += 1
        assert failed_calls < 10
    assert failed_calls > 3  # one call retries for about 90 s: four are needed
    [(on, text, when)] = calls
    assert on and when - first_failure > 300
    assert "FAIL-SAFE ON" in text and "no new entries" in text and "stop orders" in text
    assert any(r.levelno == logging.ERROR and "FAIL-SAFE ON" in r.message for r in caplog.records)
    for _ in range(2):  # the outage goes on: no second notice
        with pytest.raises(ExchangeError):
            broker.free_balance("USDT")
    assert len(calls) == 1 and broker.fail_safe
    standin.faults.clear()
    assert broker.free_balance("USDT") == 1_000
    assert not broker.fail_safe
    assert [c[0] for c in calls] == [True, False] and "FAIL-SAFE OFF" in calls[1][1]
    broker.free_balance("USDT")
    assert len(calls) == 2


def test_internal_errors_are_retried_and_count_as_an_outage(
    standin: ExchangeStandin, sim: SimTime
) -> None:
    calls: list[str] = []
    broker = make_broker(
        standin,
        sim,
        rate_limit_ms=0,
        fail_safe_after=2.0,
        on_fail_safe=lambda on, t: calls.append(t),
    )
    internal = "Internal error; unable to process your request. Please try again."
    standin.faults.reject_next(3, code=-1001, msg=internal, status=500, path=ACCOUNT)
    assert broker.free_balance("USDT") == 1_000
    assert sim.sleeps == [1, 2, 4]
    assert "internal error at the exchange" in calls[0] and "FAIL-SAFE OFF" in calls[1]


def test_short_outages_and_429_storms_do_not_trip_the_fail_safe(
    standin: ExchangeStandin, sim: SimTime
) -> None:
    calls: list[bool] = []
    broker = make_broker(standin, sim, on_fail_safe=lambda on, text: calls.append(on))
    for _ in range(3):  # about 4 minutes down, then an answer
        standin.faults.fail_next(7, path=ACCOUNT)
        broker.free_balance("USDT")
    standin.faults.rate_limit_next(10_000, retry_after=0, path=ACCOUNT)
    for _ in range(4):  # 429s for 10 minutes: the exchange is there, just busy
        with pytest.raises(ExchangeError):
            broker.free_balance("USDT")
    assert calls == [] and not broker.fail_safe


def test_a_refused_key_halts_with_advice_and_no_secret_anywhere(
    standin: ExchangeStandin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key, secret = "wrong-key-3c9d1e77", "wrong-secret-a81f0b"
    env = {"KINETIC_API_KEY": key, "KINETIC_API_SECRET": secret}
    broker = broker_from_env(
        "binance", stake_currency="USDT", url_override=standin.url, environ=env
    )
    with pytest.raises(ExchangeError) as error:
        broker.free_balance("USDT")
    message = str(error.value)
    assert not error.value.temporary
    assert "KINETIC_API_KEY" in message and "KINETIC_API_SECRET" in message
    assert "Invalid API-key" in message
    with pytest.raises(ExchangeError, match="KINETIC_API_KEY"):
        broker.place(OrderRequest("kr-1", PAIR, "long", True, "market", 0.001))
    assert "X-MBX-APIKEY" in caplog.text and "***" in caplog.text  # ccxt did log its headers
    for text in (message, caplog.text, repr(broker)):
        assert key not in text and secret not in text
    assert len(standin.requests(ACCOUNT)) == 1  # no retries: a human is needed


def test_fail_safe_needs_more_than_five_minutes_and_reports_each_change_once() -> None:
    sim = SimTime()
    changes: list[bool] = []
    tracker = FailSafe("exchange x", clock=sim.clock, on_change=lambda on, _: changes.append(on))
    tracker.failure("503")
    sim.now += 300
    tracker.failure("503")
    assert not tracker.active  # exactly five minutes is not more than five
    sim.now += 1
    tracker.failure("503")
    tracker.failure("503")
    assert tracker.active and changes == [True]
    tracker.success()
    tracker.success()
    assert not tracker.active and changes == [True, False]

    def broken(on: bool, text: str) -> None:
        raise RuntimeError("notifier down")

    quiet = FailSafe("exchange y", clock=sim.clock, after=0, on_change=broken)
    quiet.failure("503")
    sim.now += 1
    quiet.failure("503")  # a failing notifier does not break the broker
    assert quiet.active


def test_outages_are_named_in_a_few_words() -> None:
    assert outage_text(ccxt.RequestTimeout("binance GET http://x/api/v3/order")) == (
        "request timed out"
    )
    assert outage_text(ccxt.ExchangeNotAvailable("binance GET http://x 502 Bad Gateway")) == (
        "HTTP 502"
    )
    assert outage_text(ccxt.NetworkError("connection refused")) == "network error"
