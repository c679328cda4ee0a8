"""A model read by the rules, on the values the plan computed for its features and label.

The interpreter evaluates a model's features and label like any other series (batch or
incremental); this turns them into the arrays the models stage takes and gives back the
probabilities, or the rolling accuracy of those probabilities, for the candles asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from kinetic_rules.lang import ast
from kinetic_rules.models import (
    InForce,
    ModelCache,
    TrainingRecord,
    predict_rows,
    rolling_accuracy,
)

if TYPE_CHECKING:
    from kinetic_rules.models.background import BackgroundTrainer


def model_values(
    node: ast.Predict,
    parts: Sequence[np.ndarray],
    open_times: np.ndarray,
    step: int,
    start: int,
    cache: ModelCache,
    pair: str,
    records: list[TrainingRecord],
    in_force: InForce | None = None,
    trainer: BackgroundTrainer | None = None,
) -> np.ndarray:
    """Values for candles start..end of `open_times` (ns); `parts` are over every candle:
    the features then the label (a probability), or the probability then the label."""
    length = len(open_times)
    settings = node.settings
    if not settings.enabled:
        return np.full(length - start, np.nan)
    label = np.asarray(parts[-1], dtype=bool)
    if node.output == "accuracy":
        probability = np.asarray(parts[0], dtype=np.float64)
        return rolling_accuracy(probability, label, settings.horizon, node.window, start)
    features = [np.asarray(part, dtype=np.float64) for part in parts[:-1]]
    values, found = predict_rows(
        settings, features, label, open_times, step, start, cache, pair, in_force, trainer
    )
    records.extend(found)
    return values


def model_candles(nodes: Sequence[ast.Node], step_seconds: int) -> int:
    """Base candles a model must keep in memory to retrain exactly as a backtest does: the
    training window, the span to the next retraining point, the label's horizon and the
    predictions its accuracy is scored on."""
    needed = 0
    for root in nodes:
        for node in root.walk():
            if isinstance(node, ast.Predict) and node.settings.enabled:
                settings = node.settings
                seconds = settings.train_window + settings.retrain_every
                candles = -(-seconds // step_seconds) + settings.horizon + node.window + 1
                needed = max(needed, candles)
    return needed
