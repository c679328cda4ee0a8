"""Messages a user who does not program can act on: times read one way only, durations in
words, near names suggested, `--help` without the heavy libraries, library logs hidden."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.cli.app import main
from kinetic_rules.data.timerange import parse_time, parse_timerange
from kinetic_rules.errors import ConfigError
from kinetic_rules.persist import TradeStore
from kinetic_rules.timeframes import format_duration
from tests.conftest import STRATEGIES

KE = str(STRATEGIES / "kinetic_empire.yaml")
HEAVY = ("pandas", "numpy", "ccxt", "sqlalchemy", "pyarrow", "lark", "alembic", "pydantic")


# -- times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-04", "2024-03-04 00:00"),
        ("2024-03-04T10:05", "2024-03-04 10:05"),
        ("2024-03-04 10:05:30", "2024-03-04 10:05:30"),
        ("2024-03-04T10:05Z", "2024-03-04 10:05"),
        ("2024-03-04T12:05+02:00", "2024-03-04 10:05"),
        ("20240304", "2024-03-04 00:00"),
        ("202403041005", "2024-03-04 10:05"),
        ("1709546700", "2024-03-04 10:05"),
    ],
)
def test_iso_8601_and_the_compact_forms_are_read_as_utc(text: str, expected: str) -> None:
    assert parse_time(text) == pd.Timestamp(expected, tz="UTC")


@pytest.mark.parametrize(
    "text", ["04/03/2024", "03/04/2024", "4.3.2024", "March 4, 2024", "2024-3-4", "20241301", ""]
)
def test_ambiguous_or_malformed_times_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="not a time I can read unambiguously; write 2024-03-04"):
        parse_time(text, "--at")


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
def test_any_iso_time_reads_back_as_the_same_instant(moment: datetime) -> None:
    moment = moment.replace(tzinfo=UTC)
    for text in (moment.isoformat(), moment.isoformat(sep=" ", timespec="seconds")):
        expected = pd.Timestamp(datetime.fromisoformat(text))
        assert parse_time(text) == expected


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2198, 1, 1)),
    st.integers(min_value=1, max_value=10**6),  # under two years: the end stays before 2200
)
def test_iso_interval_timeranges_are_half_open_spans(start: datetime, minutes: int) -> None:
    start = start.replace(microsecond=0, tzinfo=UTC)
    end = start + timedelta(minutes=minutes)
    assert parse_timerange(f"{start.isoformat()}/{end.isoformat()}") == (
        pd.Timestamp(start),
        pd.Timestamp(end),
    )
    assert parse_timerange(f"/{end:%Y-%m-%d}") == (None, pd.Timestamp(f"{end:%Y-%m-%d}", tz="UTC"))


def test_the_compact_timerange_is_unchanged() -> None:
    assert parse_timerange("20240101-20240201") == (
        pd.Timestamp("2024-01-01", tz="UTC"),
        pd.Timestamp("2024-02-01", tz="UTC"),
    )
    with pytest.raises(ConfigError, match="ends before it starts"):
        parse_timerange("2024-02-01/2024-01-01")
    with pytest.raises(ConfigError, match="not a time I can read unambiguously"):
        parse_timerange("01/02/2024/")


@pytest.mark.parametrize(
    "command",
    [
        ["explain", KE, "--pair", "BTC/USDT", "--at", "04/03/2024"],
        ["trades", "--db", "sqlite://", "--from", "04/03/2024"],
        ["backtest", KE, "--timerange", "04/03/2024-05/03/2024"],
    ],
)
def test_every_command_refuses_a_day_month_date(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse refuses `trades --from` itself
        raise SystemExit(main(command))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "04/03/2024" in err and "2024-03-04" in err and "Traceback" not in err


def test_an_off_grid_time_says_which_candle_it_explains(
    fixture_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["explain", KE, "--data", str(fixture_store), "--pair", "BTC/USDT", "--no-trades"]
    assert main([*args, "--at", "2024-03-04T10:07:30"]) == 0
    out = capsys.readouterr().out
    assert "candle 2024-03-04 10:05:00+00:00 (5m)" in out
    assert (
        "note: 2024-03-04 10:07:30 UTC is not the open of a 5m candle; used the candle that "
        "contains it, opened 2024-03-04 10:05" in out
    )
    assert main([*args, "--at", "2024-03-04T10:05"]) == 0
    assert "note:" not in capsys.readouterr().out  # on the grid: nothing to say


# -- durations and names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 seconds"),
        (300, "5 minutes"),
        (3600, "1 hour"),
        (150 * 86400, "150 days"),
        (43410 * 60, "30 days 3 hours 30 minutes"),
        (90061, "1 day 1 hour 1 minute 1 second"),
    ],
)
def test_durations_print_in_words(seconds: int, words: str) -> None:
    assert format_duration(seconds) == words


def test_validate_states_the_warm_up_in_days(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", KE, str(STRATEGIES / "adaptive_mtf.yaml")]) == 0
    out = capsys.readouterr().out
    assert "warm-up 150 days (" in out
    assert "warm-up 30 days 3 hours 30 minutes (" in out


@pytest.mark.parametrize(
    ("typed", "suggested"), [("emma", "ema"), ("rsl", "rsi"), ("EMA", "ema"), ("atr_", "atr")]
)
def test_an_unknown_function_name_suggests_near_ones(
    typed: str, suggested: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["functions", typed]) == 2
    err = capsys.readouterr().err
    assert f"no function named '{typed}'; did you mean {suggested}" in err


def test_a_name_near_nothing_suggests_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["functions", "qqqqqqqq"]) == 2
    assert "did you mean" not in capsys.readouterr().err


# -- --help and library logs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["backtest", "--help"],
        ["download", "--help"],
        ["run", "--help"],
        ["trades", "-h"],
    ],
)
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    probe = (
        "import sys\n"
        "from kinetic_rules.cli.app import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert "usage: kinetic-rules" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_library_logs_stay_hidden_unless_verbose(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"
    TradeStore(url).close()
    caplog.set_level(logging.INFO)
    assert main(["trades", "--db", url, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert not [r for r in caplog.records if r.name.startswith(("alembic", "sqlalchemy"))]
    assert main(["trades", "--verbose", "--db", url, "--format", "json"]) == 0
    assert [r for r in caplog.records if r.name.startswith("alembic")]
    caplog.clear()
    assert main(["-v", "trades", "--db", url, "--format", "json"]) == 0
    assert [r for r in caplog.records if r.name.startswith("alembic")]
    before = logging.getLogger("alembic").level
    assert main(["trades", "--db", url, "--format", "json"]) == 0  # quiet again
    assert logging.getLogger("alembic").level == before  # and nothing left behind
