"""Learned predictors, point in time: arrays in, predictions out.

This stage knows nothing of the strategy language. The compiler evaluates a model's
features and label with the same plan as the rules and hands the arrays here; this
stage decides what was known when, trains (or finds in its cache) the model of each
retraining point, and gives one probability per candle.
"""

from typing import TYPE_CHECKING, Any

from kinetic_rules.models.cache import ModelCache, Trained, default_cache
from kinetic_rules.models.estimators import EstimatorUnavailable, lightgbm_installed
from kinetic_rules.models.predictions import (
    InForce,
    TrainingRecord,
    calibration,
    predict_rows,
    retraining_points,
    rolling_accuracy,
)
from kinetic_rules.models.settings import ModelSettings

if TYPE_CHECKING:
    from kinetic_rules.models.background import BackgroundTrainer

__all__ = [
    "BackgroundTrainer",
    "EstimatorUnavailable",
    "InForce",
    "ModelCache",
    "ModelSettings",
    "Trained",
    "TrainingRecord",
    "calibration",
    "default_cache",
    "lightgbm_installed",
    "predict_rows",
    "retraining_points",
    "rolling_accuracy",
]


def __getattr__(name: str) -> Any:
    """`BackgroundTrainer` on first use: its worker processes (multiprocessing,
    concurrent.futures) are for live sessions, not for every backtest."""
    if name == "BackgroundTrainer":
        from kinetic_rules.models.background import BackgroundTrainer

        return BackgroundTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
