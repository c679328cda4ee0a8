"""Training at one retraining point, on what was known then and nothing later.

A sample is a candle: its features, and its label read `horizon` candles later. At a
retraining point R the training set holds the samples whose label was known by R (the
candle it is read at closed at or before R) and which opened within the training window
before R. So no label crosses R, by construction: the model used from R on has never
seen an outcome that happened after R.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinetic_rules.models.cache import ModelCache, Trained, training_key
from kinetic_rules.models.estimators import (
    EstimatorUnavailable,
    importances,
    make_estimator,
    needs_weights,
)
from kinetic_rules.models.settings import ModelSettings

NS = 1_000_000_000


@dataclass(frozen=True)
class Samples:
    """Every candle of one series as a potential sample."""

    features: np.ndarray  # (candles, features) float64, NaN where undefined
    targets: np.ndarray  # (candles,) float64: 1/0 where the label is known in the data, else NaN
    known_at: np.ndarray  # (candles,) int64 ns: when each label became known (max int if never)
    open_times: np.ndarray  # (candles,) int64 ns
    usable: np.ndarray  # (candles,) bool: features defined, label known, on the sampling grid

    @classmethod
    def build(
        cls,
        settings: ModelSettings,
        features: np.ndarray,
        label: np.ndarray,
        open_times: np.ndarray,
        step: int,
    ) -> Samples:
        count, horizon = len(open_times), settings.horizon
        closes = open_times + step
        targets = np.full(count, np.nan)
        known_at = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
        if count > horizon:
            targets[: count - horizon] = label[horizon:].astype(np.float64)
            known_at[: count - horizon] = closes[horizon:]
        usable = np.isfinite(features).all(axis=1) & np.isfinite(targets)
        if settings.sample_every:
            usable &= open_times % (settings.sample_every * NS) == 0
        return cls(features, targets, known_at, open_times, usable)

    def at(self, settings: ModelSettings, point: int) -> np.ndarray:
        """Indices of the samples a model trained at `point` (ns) may learn from."""
        start = point - settings.train_window * NS
        chosen = self.usable & (self.known_at <= point) & (self.open_times >= start)
        return np.flatnonzero(chosen)


def training_set(
    settings: ModelSettings, samples: Samples, point: int
) -> tuple[str, np.ndarray, np.ndarray]:
    """The cache key, features and labels a model trained at `point` learns from."""
    rows = samples.at(settings, point)
    x, y = samples.features[rows], samples.targets[rows].astype(np.int8)
    return training_key(settings, point, x, y), x, y


def train(settings: ModelSettings, samples: Samples, point: int, cache: ModelCache) -> Trained:
    """The model of one retraining point: from the cache, or fitted and stored there."""
    key, x, y = training_set(settings, samples, point)
    found = cache.get(key)
    if found is not None:
        return found
    trained = fit(settings, x, y)
    cache.fits += 1
    cache.put(key, trained)
    return trained


def fit(settings: ModelSettings, x: np.ndarray, y: np.ndarray) -> Trained:
    if len(y) < settings.min_samples:
        return Trained(None, f"{len(y)} samples, fewer than min_samples {settings.min_samples}")
    positives = int(y.sum())
    if positives in (0, len(y)):
        return Trained(None, f"all {len(y)} labels are {int(y[0])}: nothing to tell apart")
    try:
        estimator = make_estimator(settings)
        if needs_weights(settings):
            weights = np.where(
                y == 1, len(y) / (2 * positives), len(y) / (2 * (len(y) - positives))
            )
            estimator.fit(x, y, sample_weight=weights)
        else:
            estimator.fit(x, y)
    except EstimatorUnavailable:
        raise
    except Exception as problem:  # a failing model disables itself for its span only
        return Trained(None, f"training failed: {type(problem).__name__}: {problem}")
    return Trained(estimator, None, tuple(importances(estimator, x.shape[1])))
