"""Trained models kept in memory and on disk, so a repeated backtest never trains again.

The key is a hash of the model's settings, the exact samples it was trained on and the
retraining point: changing a feature, the data or a setting misses, nothing else does.
Files are read only from this cache's own folder and carry a version stamp; anything
unreadable or stamped otherwise is trained again (and overwritten).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinetic_rules.models.settings import VERSION, ModelSettings

DEFAULT_FOLDER = Path("user_data") / "models"
FOLDER_VARIABLE = "KINETIC_RULES_MODELS"  # another folder; "off" keeps models in memory only


def training_key(settings: ModelSettings, point: int, x: np.ndarray, y: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(settings.fingerprint.encode())
    digest.update(str(point).encode())
    digest.update(np.ascontiguousarray(x, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.int8).tobytes())
    return digest.hexdigest()


@dataclass
class Trained:
    """What training at one point left: the estimator (None if it failed) and why not."""

    estimator: Any
    problem: str | None = None
    importances: tuple[float, ...] = ()


@dataclass
class ModelCache:
    folder: Path | None  # None: memory only
    fits: int = 0  # estimators trained by this process (what a warm cache avoids)
    loads: int = 0  # read from disk
    _memory: dict[str, Trained] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> Trained | None:
        with self._lock:
            found = self._memory.get(key)
        if found is not None or self.folder is None:
            return found
        path = self.folder / f"{key}.pickle"
        if not path.is_file():
            return None
        try:
            with path.open("rb") as file:
                stamp, trained = pickle.load(file)
        except Exception:  # a torn or foreign file: train again
            return None
        if stamp != VERSION or not isinstance(trained, Trained):
            return None
        self.loads += 1
        with self._lock:
            self._memory[key] = trained
        return trained

    def put(self, key: str, trained: Trained) -> None:
        with self._lock:
            self._memory[key] = trained
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / f"{key}.{os.getpid()}.part"
        with part.open("wb") as file:
            pickle.dump((VERSION, trained), file, protocol=pickle.HIGHEST_PROTOCOL)
        part.replace(self.folder / f"{key}.pickle")  # whole or not at all


_DEFAULT: list[ModelCache] = []


def default_cache() -> ModelCache:
    """The process's cache: ./user_data/models, or $KINETIC_RULES_MODELS (`off`: memory)."""
    setting = os.environ.get(FOLDER_VARIABLE)
    folder = None if setting == "off" else Path(setting) if setting else DEFAULT_FOLDER
    if not _DEFAULT or _DEFAULT[0].folder != folder:
        _DEFAULT[:] = [ModelCache(folder)]
    return _DEFAULT[0]
