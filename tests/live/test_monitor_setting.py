"""`orders.monitor_every` in the strategy file, and `run --monitor-every` overriding it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.cli.app import main
from kinetic_rules.cli.run_cmd import _monitor_every
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.errors import ConfigError
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_file
from kinetic_rules.spec.types import monitor_seconds

WATCHED = Path(__file__).parent / "strategies" / "watched.yaml"


def with_monitor(tmp_path: Path, value: str) -> Path:
    text = WATCHED.read_text().replace("orders:\n", f"orders:\n  monitor_every: {value}\n")
    assert "monitor_every" in text
    path = tmp_path / "monitored.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("value", "seconds"), [("30s", 30), ("1h", 3600), ("1s", 1), ("off", 0)])
def test_the_file_sets_how_often_the_monitor_looks(
    tmp_path: Path, value: str, seconds: int
) -> None:
    plan = build_plan(check(load_file(with_monitor(tmp_path, value))))
    assert plan.strategy.spec.orders.monitor_every == seconds
    assert _monitor_every(None, plan) == seconds  # no flag: the file decides
    assert _monitor_every("10s", plan) == 10  # the flag overrides it
    assert _monitor_every("off", plan) == 0


def test_without_the_setting_the_monitor_looks_every_five_seconds() -> None:
    plan = build_plan(check(load_file(WATCHED)))
    assert _monitor_every(None, plan) == 5


@pytest.mark.parametrize("value", ["2h", "0s", "soon", "90m"])
def test_a_setting_out_of_bounds_fails_validate_with_its_place(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = with_monitor(tmp_path, value)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    line = path.read_text().splitlines().index(f"  monitor_every: {value}") + 1
    assert f"{path.name}:{line}:" in err and "from 1s to 1h" in err and "Traceback" not in err


@pytest.mark.parametrize("flag", ["2h", "0.5s", "soon"])
def test_a_flag_out_of_bounds_is_refused(flag: str) -> None:
    plan = build_plan(check(load_file(WATCHED)))
    with pytest.raises(ConfigError, match=f"--monitor-every {flag}"):
        _monitor_every(flag, plan)


@given(st.integers(min_value=-10_000, max_value=10_000), st.sampled_from("smhdw"))
def test_only_durations_from_one_second_to_one_hour_are_taken(number: int, unit: str) -> None:
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}[unit]
    text = f"{number}{unit}"
    try:
        seconds = monitor_seconds(text)
    except ValueError:
        assert not (number >= 1 and 1 <= number * scale <= 3600)
    else:
        assert seconds == number * scale and 1 <= seconds <= 3600
