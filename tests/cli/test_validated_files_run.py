"""A file that `validate` accepts must run: backtest, explain and replay end in 0 or 2.

Strategy files are generated from the function registry with edge-case constants
(see strategy_gen.py) and run in-process on the real fixture candles. Each crash this
property found is kept as an @example, fixed at its root.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings

from kinetic_rules.cli.app import main
from tests.cli.strategy_gen import strategy_files

FOUND = """metadata: {name: found}
timeframe: 1h
market: {pairs: [BTC/USDT]}
params:
  p_num: {value: 0.5, min: -10, max: 10}
  p_int: {value: 14, min: 1, max: 100}
entry:
  long:
    a: CONDITION
"""
# Crashes this property found (or the issue reported), each fixed at its root:
FOUND_STEP = FOUND.replace("CONDITION", "step(close, [3, 2, 1], [1, 2, 3]) > 1")
FOUND_VALUE_AREA = FOUND.replace("CONDITION", "close > volume_profile_vah(7d, value_area=1000)")
FOUND_CONSTANT_IF = FOUND.replace(  # numpy's 0-d array from np.where over constants
    "CONDITION", "(if 1 == $p_num then 0 else 0)[$p_int] > (-($p_num))@1d"
).replace("market:", "informative: {timeframes: [1d]}\nmarket:")
FOUND_DEEP_CHAIN = FOUND.replace("CONDITION", "d299 > 0").replace(
    "entry:",
    "indicators:\n  d0: close\n"
    + "".join(f"  d{i}: d{i - 1} + 1\n" for i in range(1, 300))
    + "entry:",
)


def _cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def _assert_clean(command: str, code: int, err: str, text: str) -> None:
    assert code in (0, 2), f"{command} exited {code}:\n{err}\n--- file ---\n{text}"
    assert "internal error" not in err and "Traceback" not in err, (
        f"{command}:\n{err}\n--- file ---\n{text}"
    )


@pytest.mark.filterwarnings("ignore")
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=strategy_files())
@example(text=FOUND_STEP)
@example(text=FOUND_VALUE_AREA)
@example(text=FOUND_CONSTANT_IF)
@example(text=FOUND_DEEP_CHAIN)
def test_every_file_validate_accepts_runs_without_an_internal_error(
    text: str, fixture_store: Path, tmp_path: Path
) -> None:
    path = tmp_path / "generated.yaml"
    path.write_text(text)
    code, err = _cli(["validate", str(path)])
    _assert_clean("validate", code, err, text)
    if code != 0:
        return
    store, window = str(fixture_store), ["--timerange", "20240310-"]
    runs = {
        "backtest": ["backtest", str(path), "--data", store, "--quiet", *window],
        "explain": [
            *("explain", str(path), "--data", store),
            *("--pair", "BTC/USDT", "--at", "2024-03-12T10:00"),
        ],
        "run --replay": ["run", str(path), "--replay", store, "--quiet", *window],
    }
    for command, argv in runs.items():
        code, err = _cli(argv)
        _assert_clean(command, code, err, text)
