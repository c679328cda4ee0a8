"""What a model is, for this stage: plain settings, with nothing of the language in them."""

from __future__ import annotations

import hashlib
from dataclasses import astuple, dataclass
from functools import cached_property

# Bump when training or the cached estimators change meaning: older cache entries are ignored.
VERSION = 1


@dataclass(frozen=True)
class ModelSettings:
    """How to train one model; hashable, so it is part of the node that reads it."""

    name: str
    kind: str  # gradient_boosting | random_forest | logistic_regression | lightgbm
    trees: int = 100
    depth: int = 4
    learning_rate: float = 0.1
    min_leaf: int = 20
    regularization: float = 1.0
    train_window: int = 90 * 86_400  # seconds
    retrain_every: int = 7 * 86_400  # seconds, from the Unix epoch
    sample_every: int = 0  # seconds between training samples; 0: every candle
    min_samples: int = 200
    class_balance: bool = True
    seed: int = 0
    horizon: int = 1  # candles between a sample and the candle its label is read at
    enabled: bool = True

    @cached_property
    def fingerprint(self) -> str:
        """Everything that changes a trained model, as text (the name does not)."""
        fields = astuple(self)[1:-1]  # not the name, not `enabled`
        return hashlib.sha256(repr((VERSION, fields)).encode()).hexdigest()
