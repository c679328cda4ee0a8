"""Shared fixtures for the function tests: real candles and a way to call any function."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.functions import REGISTRY, ArgKind, Function

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "binance-5m-2024"
FIELDS = ("open", "high", "low", "close", "volume")

Columns = dict[str, np.ndarray]


@cache
def load(name: str) -> Columns:
    frame = pd.read_feather(DATA / f"{name}.feather")
    return {field: frame[field].to_numpy(dtype=np.float64) for field in FIELDS}


def sample_args(function: Function, cols: Columns) -> list[Any]:
    """Arguments for a call: the defaults, and plausible values for required ones."""
    close, open_ = cols["close"], cols["open"]
    series = {
        "x": close,
        "a": close,
        "b": open_,
        "low": cols["low"],
        "high": cols["high"],
        "source": close,
    }
    conditions = {"reset": close < open_}
    out: list[Any] = []
    for arg in function.args:
        if arg.kind is ArgKind.SERIES:
            out.append(series.get(arg.name, close))
        elif arg.kind is ArgKind.BOOL_SERIES:
            out.append(conditions.get(arg.name, close > open_))
        elif not arg.required:
            out.append(arg.default)
        elif arg.kind is ArgKind.LIST:
            if arg.name == "thresholds":
                finite = close[np.isfinite(close)]
                levels = np.unique(np.quantile(finite, [0.25, 0.5, 0.75])) if len(finite) else []
                out.append(tuple(float(v) for v in levels) if len(levels) == 3 else (1.0, 2.0, 3.0))
            else:
                out.append((1.0, 2.0, 3.0))
        else:
            out.append(20)  # a period or window
    return out


def constants(function: Function, args: list[Any]) -> dict[str, Any]:
    return {a.name: v for a, v in zip(function.args, args, strict=True) if not a.kind.is_series}


def call(function: Function, cols: Columns, args: list[Any] | None = None) -> np.ndarray:
    if args is None:
        args = sample_args(function, cols)
    inputs = [cols[field] for field in function.inputs]
    return np.asarray(function.impl(*inputs, *args))


class Kit:
    """The helpers above, handed to tests as a fixture (conftest is not importable)."""

    load = staticmethod(load)
    sample_args = staticmethod(sample_args)
    constants = staticmethod(constants)
    call = staticmethod(call)


@pytest.fixture(scope="session")
def kit() -> Kit:
    return Kit()


@pytest.fixture(scope="session")
def btc() -> Columns:
    return load("BTC_USDT-5m")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking `function` runs once per registered function."""
    if "function" in metafunc.fixturenames:
        functions = REGISTRY.all()
        metafunc.parametrize("function", functions, ids=[f.name for f in functions])
