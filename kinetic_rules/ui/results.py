"""A finished backtest's results folder (results.json and trades.json) as a dashboard
source: its trades, equity, pairs and strategy, with the charts of a running session.
Read-only: there is nothing to control."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from kinetic_rules.errors import ConfigError
from kinetic_rules.files import read_regular
from kinetic_rules.live.controls import SessionControls
from kinetic_rules.ui.models import (
    CandleOut,
    ControlsState,
    DecisionOut,
    EquityPoint,
    EventOut,
    PairStateOut,
    PositionOut,
    ScannerOut,
    StatusOut,
    StrategyOut,
    TradeOut,
)
from kinetic_rules.ui.sources import STRATEGY_BYTES, TradeFilter

MAX_BYTES = 512 * 1024 * 1024  # a trades.json bigger than this is not a backtest's


class ResultsSource:
    kind = "results"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        document = _load(folder / "results.json")
        if not isinstance(document, dict) or document.get("format") != 2:
            raise ConfigError(
                f"{folder / 'results.json'}: not the results of a backtest of this version "
                "(format 2); run the backtest again with --report"
            )
        self.document = document
        records = _load(folder / "trades.json")
        if not isinstance(records, list):
            raise ConfigError(f"{folder / 'trades.json'}: expected a list of trades")
        try:
            self._trades = [_trade(r) for r in records]
        except (ValidationError, TypeError, AttributeError) as bad:
            raise ConfigError(f"{folder / 'trades.json'}: a trade is malformed ({bad})") from None
        self._trades.sort(key=lambda t: (t.entry_time, t.id))

    @property
    def controls(self) -> SessionControls | None:
        return None

    def status(self, controls: ControlsState) -> StatusOut:
        strategy = self.document.get("strategy") or {}
        end = (self.document.get("data_range") or {}).get("end")
        return StatusOut(
            source="results",
            strategy=str(strategy.get("name", "")),
            running=False,
            paused=False,
            stopping=False,
            fail_safe=False,
            exchange="a backtest: no exchange",
            last_close=pd.Timestamp(end) if end else None,
            controls="read-only",
            stake_currency="",
            pairs=[
                PairStateOut(pair=str(p), regime=None, blocked=False, shortlisted=True)
                for p in self.document.get("pairs", [])
            ],
        )

    def positions(self) -> list[PositionOut]:
        return []  # a backtest closes what is open at its last candle

    def trades(self, which: TradeFilter) -> list[TradeOut]:
        return which.page(self._trades)

    def equity(self, after: datetime | None = None) -> list[EquityPoint]:
        daily = self.document.get("daily_equity") or {}
        points = [
            EquityPoint(time=pd.Timestamp(day, tz="UTC"), realized=float(value), total=None)
            for day, value in sorted(daily.items())
        ]
        return [p for p in points if after is None or p.time > _utc(pd.Timestamp(after))]

    def events(self, limit: int) -> list[EventOut]:
        return []

    def decisions(self, limit: int) -> list[DecisionOut]:
        return []

    def strategy(self) -> StrategyOut:
        strategy = self.document.get("strategy") or {}
        path = Path(str(strategy.get("file", "")))
        try:
            text = read_regular(path, STRATEGY_BYTES)[:STRATEGY_BYTES].decode("utf-8", "replace")
        except OSError:  # the file moved or is no file any more: show the rest
            text = ""
        params = {str(k): str(v) for k, v in (self.document.get("params") or {}).items()}
        return StrategyOut(
            name=str(strategy.get("name", "")), path=str(path), text=text, params=params
        )

    def scanner(self) -> ScannerOut:
        return ScannerOut(pairs=[], changes=[])

    def candles(self, pair: str, limit: int) -> list[CandleOut]:
        return []


def _utc(stamp: pd.Timestamp) -> pd.Timestamp:
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _load(path: Path) -> Any:
    try:
        data = read_regular(path, MAX_BYTES)
    except OSError as problem:
        raise ConfigError(
            f"{path}: {problem.strerror or problem} (give the folder a backtest --report wrote)"
        ) from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // 2**20} MB; not a backtest's file")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as bad:
        raise ConfigError(f"{path}: not valid JSON ({bad})") from None


def _trade(record: dict[str, Any]) -> TradeOut:
    return TradeOut.model_validate({**record, "stop": record.get("final_stop")})
