"""The scikit-learn (or LightGBM) estimator a model's settings describe, seeded."""

from __future__ import annotations

import importlib.util
from typing import Any

from kinetic_rules.models.settings import ModelSettings


class EstimatorUnavailable(Exception):
    """The estimator needs a package that is not installed (LightGBM)."""


def lightgbm_installed() -> bool:
    return importlib.util.find_spec("lightgbm") is not None


def make_estimator(settings: ModelSettings) -> Any:
    """A fresh, seeded, single-threaded estimator: the same data gives the same model."""
    balance = "balanced" if settings.class_balance else None
    if settings.kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=settings.trees,
            max_depth=settings.depth,
            min_samples_leaf=settings.min_leaf,
            class_weight=balance,
            random_state=settings.seed,
            n_jobs=1,
        )
    if settings.kind == "gradient_boosting":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(
            n_estimators=settings.trees,
            max_depth=settings.depth,
            learning_rate=settings.learning_rate,
            min_samples_leaf=settings.min_leaf,
            random_state=settings.seed,
        )
    if settings.kind == "logistic_regression":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(
            StandardScaler(),
            LogisticRegression(
                C=settings.regularization,
                class_weight=balance,
                random_state=settings.seed,
                max_iter=500,
            ),
        )
    if settings.kind == "lightgbm":
        if not lightgbm_installed():
            raise EstimatorUnavailable(
                "estimator lightgbm needs the lightgbm package: pip install lightgbm"
            )
        import lightgbm

        return lightgbm.LGBMClassifier(
            n_estimators=settings.trees,
            max_depth=settings.depth,
            learning_rate=settings.learning_rate,
            min_child_samples=settings.min_leaf,
            class_weight=balance,
            random_state=settings.seed,
            n_jobs=1,
            deterministic=True,
            verbose=-1,
        )
    raise EstimatorUnavailable(f"unknown estimator {settings.kind}")


def needs_weights(settings: ModelSettings) -> bool:
    """Gradient boosting has no class_weight: balance goes in as sample weights."""
    return settings.class_balance and settings.kind == "gradient_boosting"


def importances(estimator: Any, features: int) -> list[float]:
    """How much each feature counts, summing to 1 (absolute coefficients for a linear model)."""
    import numpy as np

    values = getattr(estimator, "feature_importances_", None)
    if values is None and hasattr(estimator, "steps"):
        values = np.abs(estimator.steps[-1][1].coef_[0])
    if values is None:
        return [0.0] * features
    array = np.asarray(values, dtype=np.float64)
    total = float(array.sum())
    return [float(v / total) if total > 0 else 0.0 for v in array]
