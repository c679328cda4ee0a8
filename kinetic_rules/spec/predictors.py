"""The `models:` section: learned predictors declared as data (docs/models.md).

A model names its features (expressions), its label (a condition read at the end of a
future horizon: the one place a file looks ahead, and only to build training labels),
an estimator with bounded settings, and when and on what it is trained. Every number a
file gives is bounded here, so nothing a strategy supplies can make training unbounded.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kinetic_rules.spec.types import Condition, Duration, Name, Value

MAX_FEATURES = 50  # features of one model
MAX_MODELS = 8  # models in one file
MAX_TREES = 500
MAX_DEPTH = 12
MAX_TRAIN_WINDOW = 730 * 86_400  # two years
MAX_HORIZON = 30 * 86_400  # labels read at most 30 days ahead
MIN_RETRAIN = 3_600  # retrain at most every hour
MAX_RETRAIN = 365 * 86_400
MAX_SAMPLES = 100_000  # samples one training may read: train_window / sample_every

EstimatorKind = Literal["gradient_boosting", "random_forest", "logistic_regression", "lightgbm"]


class _Section(BaseModel):
    # built when first used, like the strategy's sections (spec/models.py)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


class Label(_Section):
    horizon: Duration = Field(
        description="How far ahead the label looks, e.g. 4h. The label of a candle is known "
        "only once this much time has passed; training never uses it before.",
        ge=1,
        le=MAX_HORIZON,
    )
    when: Condition = Field(
        description="A condition read at the end of the horizon: the label is 1 where it "
        "holds. On 5m candles with a 4h horizon, `close[48]` in it is the close of the candle "
        "being labelled, so `close > close[48]` means 'the price is higher 4 hours later'."
    )


class Estimator(_Section):
    kind: EstimatorKind = Field(
        "random_forest",
        description="gradient_boosting, random_forest, logistic_regression (scikit-learn), "
        "or lightgbm (only where the lightgbm package is installed).",
    )
    trees: int = Field(100, ge=1, le=MAX_TREES, description="Trees of a forest or boosting rounds.")
    depth: int = Field(4, ge=1, le=MAX_DEPTH, description="Deepest a tree may grow.")
    learning_rate: float = Field(
        0.1, gt=0, le=1, description="Boosting: how much each new tree corrects."
    )
    min_leaf: int = Field(
        20, ge=1, le=10_000, description="Trees: fewest samples in a leaf (less overfitting)."
    )
    regularization: float = Field(
        1.0, gt=0, le=10_000, description="Logistic regression: C, the inverse strength."
    )


class Model(_Section):
    features: list[Value] | dict[Name, Value] = Field(
        description="What the model sees at each candle: expressions of the language, as a "
        f"list or a map of named expressions (1 to {MAX_FEATURES}). A condition counts as 1/0."
    )
    label: Label = Field(description="What the model predicts: a condition over the future.")
    estimator: Estimator = Field(
        default_factory=Estimator,
        description="The learning method and its bounded settings; a word alone "
        "(`estimator: gradient_boosting`) takes the defaults.",
    )
    train_window: Duration = Field(
        90 * 86_400, ge=3_600, le=MAX_TRAIN_WINDOW, description="How far back training reads."
    )
    retrain_every: Duration = Field(
        7 * 86_400,
        ge=MIN_RETRAIN,
        le=MAX_RETRAIN,
        description="Retraining points, every this long from 1970-01-01 UTC, so they do not "
        "depend on where the data starts.",
    )
    sample_every: Duration | None = Field(
        None,
        ge=60,
        le=7 * 86_400,
        description="Training takes one sample per this long (e.g. 1h), fewer and less "
        "overlapping than every candle; default: every candle.",
    )
    min_samples: int = Field(
        200, ge=10, le=1_000_000, description="Fewer usable samples: no model for that span."
    )
    class_balance: bool = Field(
        True, description="Weigh both classes equally, however rare one is."
    )
    seed: int = Field(
        0, ge=0, le=2**31 - 1, description="Seeds the estimator: same seed, same model."
    )
    enabled: bool | str = Field(
        True,
        description="false: the model is off and predict() is undefined everywhere (rules "
        "written for that run unchanged). A boolean param, e.g. `$use_model`, lets `--set` "
        "switch it.",
    )
    doc: str = Field("", description="What the model is for.")

    @field_validator("estimator", mode="before")
    @classmethod
    def _short_estimator(cls, value: Any) -> Any:
        """`estimator: gradient_boosting` is the short form of `{kind: gradient_boosting}`."""
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("features")
    @classmethod
    def _feature_count(cls, value: Any) -> Any:
        if not 1 <= len(value) <= MAX_FEATURES:
            raise ValueError(f"a model has 1 to {MAX_FEATURES} features, got {len(value)}")
        return value

    @field_validator("enabled")
    @classmethod
    def _param_or_bool(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and not value.startswith("$"):
            raise ValueError("`enabled` is true, false, or a boolean param such as $use_model")
        return value

    @model_validator(mode="after")
    def _windows_fit(self) -> Model:
        if self.label.horizon >= self.train_window:
            raise ValueError("the label's horizon must be shorter than the training window")
        return self

    def feature_items(self) -> list[tuple[str, str]]:
        """(name, expression) of each feature; list items are named f1, f2, …"""
        if isinstance(self.features, dict):
            return list(self.features.items())
        return [(f"f{i + 1}", text) for i, text in enumerate(self.features)]


Models = Annotated[dict[Name, Model], Field(max_length=MAX_MODELS)]
