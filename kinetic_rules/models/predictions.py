"""Point-in-time predictions and their rolling accuracy, over arrays.

The model used at a candle is the one trained at the last retraining point at or before
that candle's close. Retraining points are fixed by the schedule (every `retrain_every`
since the Unix epoch), not by where the data starts, so cutting the data at any candle
leaves every prediction up to it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kinetic_rules.models.cache import ModelCache, Trained, series_key
from kinetic_rules.models.settings import ModelSettings
from kinetic_rules.models.training import NS, Samples, train, training_set

if TYPE_CHECKING:  # the trainer's worker processes are only imported by a live session
    from kinetic_rules.models.background import BackgroundTrainer

CALIBRATION_BINS = 5


@dataclass(frozen=True)
class TrainingRecord:
    """One retraining point of one model on one series: what it learned and how it did."""

    model: str
    pair: str
    point: int  # ns: the retraining time
    window_start: int  # ns: the oldest sample it could read
    samples: int
    positives: int
    problem: str | None  # why there is no model for this span (None: trained)
    importances: tuple[float, ...]
    scored: int  # predictions of its span whose label is known in the data
    accuracy: float | None  # out of sample: right side of 0.5 on its span
    calibration: tuple[tuple[float, float, int], ...]  # per bin: mean predicted, observed, count


def retraining_points(settings: ModelSettings, closes: np.ndarray) -> np.ndarray:
    """The retraining point in force at each close (ns)."""
    every = settings.retrain_every * NS
    return (closes // every) * every


@dataclass(frozen=True)
class Predicted:
    """A whole series' predictions and trainings, kept so the same run loads no model."""

    values: np.ndarray
    records: tuple[TrainingRecord, ...]


@dataclass
class InForce:
    """The model each series predicts with, kept between calls as candles arrive."""

    models: dict[str, tuple[int, Trained]] = field(default_factory=dict)


def predict_rows(
    settings: ModelSettings,
    features: np.ndarray | Sequence[np.ndarray],
    label: np.ndarray,
    open_times: np.ndarray,
    step: int,
    start: int,
    cache: ModelCache,
    pair: str = "",
    in_force: InForce | None = None,
    trainer: BackgroundTrainer | None = None,
) -> tuple[np.ndarray, list[TrainingRecord]]:
    """Probabilities (label = 1) for the candles start..end, NaN where no model or feature.

    A backtest's whole series is kept in the cache by every input it read, so running
    it again reads the values back without loading a model. In a session, `in_force`
    keeps the model of the current retraining point between calls, so a new candle
    costs one prediction; with a `trainer`, a model not yet in the cache is trained in
    the background and the previous one stays in force until it is ready. `features` is
    one row per candle, or one column per feature (then stacked only when predicting)."""
    count = len(open_times)
    if not settings.enabled or count <= start:
        return np.full(max(count - start, 0), np.nan), []
    columns = list(features.T) if isinstance(features, np.ndarray) else list(features)
    if trainer is not None or in_force is not None:  # a session: model by model
        return _predict(settings, feature_rows(features, count), label, open_times, step,
                        start, cache, pair, in_force, trainer)  # fmt: skip
    key = series_key(settings, pair, columns, label, open_times, step, start)
    found = cache.get_series(key, Predicted)
    if found is None:
        rows = feature_rows(features, count)
        values, records = _predict(
            settings, rows, label, open_times, step, start, cache, pair, None, None
        )
        found = Predicted(values, tuple(records))
        cache.put_series(key, found)
    return found.values.copy(), list(found.records)


def feature_rows(features: np.ndarray | Sequence[np.ndarray], length: int) -> np.ndarray:
    """The features as one row per candle: given so, or filled column by column (what
    `np.column_stack` gives, with less copying)."""
    if isinstance(features, np.ndarray):
        return features
    rows = np.empty((length, len(features)))
    for number, column in enumerate(features):
        rows[:, number] = column
    return rows


def _predict(
    settings: ModelSettings,
    features: np.ndarray,
    label: np.ndarray,
    open_times: np.ndarray,
    step: int,
    start: int,
    cache: ModelCache,
    pair: str,
    in_force: InForce | None,
    trainer: BackgroundTrainer | None,
) -> tuple[np.ndarray, list[TrainingRecord]]:
    count = len(open_times)
    out = np.full(count - start, np.nan)
    points = retraining_points(settings, open_times[start:] + step)
    series = f"{settings.fingerprint}:{pair}"
    samples: Samples | None = None
    records: list[TrainingRecord] = []
    defined_rows = np.isfinite(features).all(axis=1)
    for point in np.unique(points):
        rows = np.flatnonzero(points == point) + start
        held = in_force.models.get(series) if in_force is not None else None
        if held is not None and held[0] == point:
            trained, fresh = held[1], False
        else:
            samples = samples or Samples.build(settings, features, label, open_times, step)
            trained, fresh = _model_at(settings, samples, int(point), cache, trainer, held)
            if fresh and in_force is not None:
                in_force.models[series] = (int(point), trained)
        defined = rows[defined_rows[rows]]
        if trained.estimator is not None and len(defined):
            probability = trained.estimator.predict_proba(features[defined])
            classes = list(trained.estimator.classes_)
            out[defined - start] = probability[:, classes.index(1)]
        if fresh and samples is not None:
            records.append(_record(settings, pair, samples, int(point), trained, rows, out, start))
    return np.clip(out, 0.0, 1.0), records


def _model_at(
    settings: ModelSettings,
    samples: Samples,
    point: int,
    cache: ModelCache,
    trainer: BackgroundTrainer | None,
    held: tuple[int, Trained] | None,
) -> tuple[Trained, bool]:
    """The model of `point` and True; or, while it trains in the background, the one in
    force before it (none: no model) and False."""
    if trainer is None:
        return train(settings, samples, point, cache), True
    key, x, y = training_set(settings, samples, point)
    trainer.collect()
    found = cache.get(key)
    if found is not None:
        return found, True
    trainer.submit(key, settings, x, y)
    return (held[1] if held is not None else Trained(None, "training")), False


def _record(
    settings: ModelSettings,
    pair: str,
    samples: Samples,
    point: int,
    trained: Trained,
    rows: np.ndarray,
    out: np.ndarray,
    start: int,
) -> TrainingRecord:
    learned = samples.at(settings, point)
    predicted, targets = out[rows - start], samples.targets[rows]
    known = np.isfinite(predicted) & np.isfinite(targets)
    accuracy = None
    if known.any():
        accuracy = float(np.mean((predicted[known] >= 0.5) == (targets[known] == 1)))
    return TrainingRecord(
        model=settings.name,
        pair=pair,
        point=point,
        window_start=point - settings.train_window * NS,
        samples=len(learned),
        positives=int(samples.targets[learned].sum()),
        problem=trained.problem,
        importances=trained.importances,
        scored=int(known.sum()),
        accuracy=accuracy,
        calibration=calibration(predicted[known], targets[known]),
    )


def calibration(predicted: np.ndarray, targets: np.ndarray) -> tuple[tuple[float, float, int], ...]:
    """Per probability bin (fifths): the mean prediction, how often the label held, count."""
    bins = np.minimum((predicted * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    found = []
    for index in range(CALIBRATION_BINS):
        inside = bins == index
        if inside.any():
            found.append(
                (float(predicted[inside].mean()), float(targets[inside].mean()), int(inside.sum()))
            )
    return tuple(found)


def rolling_accuracy(
    probability: np.ndarray, label: np.ndarray, horizon: int, window: int, start: int = 0
) -> np.ndarray:
    """At each candle t (from `start`), the share of the last `window` predictions scored by
    t that were on the right side of 0.5. A prediction at i is scored once its label is
    known, at t = i + horizon, never before; NaN until `window` have been scored."""
    count = len(probability)
    correct = np.full(count, np.nan)
    if count > horizon:
        said = probability[: count - horizon]
        happened = label[horizon:].astype(bool)
        scored = np.isfinite(said)
        correct[: count - horizon][scored] = ((said[scored] >= 0.5) == happened[scored]).astype(
            np.float64
        )
    defined = np.flatnonzero(np.isfinite(correct))
    totals = np.concatenate(([0.0], np.cumsum(correct[defined])))
    # scored by t: predictions made at or before t - horizon (for t from `start` on)
    seen = np.searchsorted(defined, np.arange(start, count) - horizon, side="right")
    out = np.full(count - start, np.nan)
    full = seen >= window
    out[full] = (totals[seen[full]] - totals[seen[full] - window]) / window
    return out
