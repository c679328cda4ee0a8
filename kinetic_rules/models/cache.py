"""Trained models kept in memory and on disk, so a repeated backtest never trains again.

A model's key is a hash of its settings, the exact samples it was trained on and the
retraining point; a series' key hashes every input of its predictions. Changing a
feature, the data or a setting misses, nothing else does.
Files are read only from this cache's own folder and carry a version stamp; anything
unreadable or stamped otherwise is trained again (and overwritten).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from kinetic_rules.models.settings import VERSION, ModelSettings

DEFAULT_FOLDER = Path("user_data") / "models"
FOLDER_VARIABLE = "KINETIC_RULES_MODELS"  # another folder; "off" keeps models in memory only
MODEL_FILE = ".pickle"  # one trained model
SERIES_FILE = ".series.pickle"  # one backtest's predictions of a pair


def training_key(settings: ModelSettings, point: int, x: np.ndarray, y: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(settings.fingerprint.encode())
    digest.update(str(point).encode())
    digest.update(np.ascontiguousarray(x, dtype=np.float64).data)
    digest.update(np.ascontiguousarray(y, dtype=np.int8).data)
    return digest.hexdigest()


def series_key(
    settings: ModelSettings,
    pair: str,
    features: Sequence[np.ndarray],
    label: np.ndarray,
    open_times: np.ndarray,
    step: int,
    start: int,
) -> str:
    """Every input of a whole series' predictions: the same key, the same values. The
    features are read column by column, as the rules computed them: a series found in
    the cache is never stacked into rows."""
    digest = hashlib.sha256()
    digest.update(repr(("series", settings.fingerprint, settings.name, pair, step, start)).encode())
    parts = [(open_times, np.int64), *((f, np.float64) for f in features), (label, np.bool_)]
    digest.update(repr(len(parts)).encode())
    for part, dtype in parts:
        array: np.ndarray = np.ascontiguousarray(part, dtype=dtype)
        digest.update(repr(array.shape).encode())
        digest.update(array.data)
    return digest.hexdigest()


@dataclass
class Trained:
    """What training at one point left: the estimator (None if it failed) and why not."""

    estimator: Any
    problem: str | None = None
    importances: tuple[float, ...] = ()


T = TypeVar("T")


@dataclass
class ModelCache:
    """Trained models by training key, and whole series of predictions by `series_key`.

    A backtest run again on the same candles finds its series and loads no model at all;
    a run on other candles (another timerange, a new candle) loads the models it needs."""

    folder: Path | None  # None: memory only
    fits: int = 0  # estimators trained by this process (what a warm cache avoids)
    loads: int = 0  # models read from disk
    reused: int = 0  # whole series of predictions read from memory or disk
    _memory: dict[str, object] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> Trained | None:
        found, from_disk = self._read(key, Trained, MODEL_FILE)
        self.loads += from_disk
        return found

    def put(self, key: str, trained: Trained) -> None:
        self._write(key, trained, MODEL_FILE)

    def get_series(self, key: str, kind: type[T]) -> T | None:
        found, _ = self._read(key, kind, SERIES_FILE)
        self.reused += found is not None
        return found

    def put_series(self, key: str, series: object) -> None:
        self._write(key, series, SERIES_FILE)

    def _read(self, key: str, kind: type[T], suffix: str) -> tuple[T | None, bool]:
        with self._lock:
            found = self._memory.get(key)
        if isinstance(found, kind):
            return found, False
        if self.folder is None:
            return None, False
        path = self.folder / f"{key}{suffix}"
        if not path.is_file():
            return None, False
        try:
            with path.open("rb") as file:
                stamp, value = pickle.load(file)
        except Exception:  # a torn or foreign file: train again
            return None, False
        if stamp != VERSION or not isinstance(value, kind):
            return None, False
        with self._lock:
            self._memory[key] = value
        return value, True

    def _write(self, key: str, value: object, suffix: str) -> None:
        with self._lock:
            self._memory[key] = value
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / f"{key}.{os.getpid()}.part"
        with part.open("wb") as file:
            pickle.dump((VERSION, value), file, protocol=pickle.HIGHEST_PROTOCOL)
        part.replace(self.folder / f"{key}{suffix}")  # whole or not at all


_DEFAULT: list[ModelCache] = []


def default_cache() -> ModelCache:
    """The process's cache: ./user_data/models, or $KINETIC_RULES_MODELS (`off`: memory)."""
    setting = os.environ.get(FOLDER_VARIABLE)
    folder = None if setting == "off" else Path(setting) if setting else DEFAULT_FOLDER
    if not _DEFAULT or _DEFAULT[0].folder != folder:
        _DEFAULT[:] = [ModelCache(folder)]
    return _DEFAULT[0]
