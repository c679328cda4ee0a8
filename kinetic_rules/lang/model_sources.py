"""The `models:` section, read for the checker: parsed features and labels, settings.

Everything about a model that does not need the language's resolver is checked here
with a position: the `enabled` switch (true, false or a boolean param), the horizon and
sampling step against the timeframe, and whether the estimator's package is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kinetic_rules.lang import ast
from kinetic_rules.lang.checked import ParamValue
from kinetic_rules.lang.symbols import ModelSource
from kinetic_rules.models import ModelSettings, lightgbm_installed
from kinetic_rules.spec.loader import PathKey
from kinetic_rules.spec.predictors import MAX_SAMPLES, Model
from kinetic_rules.timeframes import candles_in, timeframe_seconds

Parse = Callable[[PathKey, str], ast.Node | None]
Fail = Callable[[PathKey, str, str, str | None], None]  # path, code, message, hint


def model_sources(
    models: Mapping[str, Model],
    timeframe: str,
    params: Mapping[str, ParamValue],
    parse: Parse,
    fail: Fail,
    used: set[str],
) -> dict[str, ModelSource]:
    found: dict[str, ModelSource] = {}
    for name, model in models.items():
        base: PathKey = ("models", name)
        keyed = isinstance(model.features, dict)
        features = [
            (feature, parse((*base, "features", feature if keyed else index), text))
            for index, (feature, text) in enumerate(model.feature_items())
        ]
        label = parse((*base, "label", "when"), model.label.when)
        enabled = _enabled(model, params, base, fail, used)
        horizon = _settings_problem(model, timeframe, base, fail)
        if horizon is None:  # reported; rules reading it say nothing more
            found[name] = ModelSource(name, [], None, ModelSettings(name, model.estimator.kind))
            continue
        estimator = model.estimator
        settings = ModelSettings(
            name=name,
            kind=estimator.kind,
            trees=estimator.trees,
            depth=estimator.depth,
            learning_rate=estimator.learning_rate,
            min_leaf=estimator.min_leaf,
            regularization=estimator.regularization,
            train_window=model.train_window,
            retrain_every=model.retrain_every,
            sample_every=model.sample_every or 0,
            min_samples=model.min_samples,
            class_balance=model.class_balance,
            seed=model.seed,
            horizon=horizon,
            enabled=enabled,
        )
        found[name] = ModelSource(name, features, label, settings)
    return found


def _settings_problem(model: Model, timeframe: str, base: PathKey, fail: Fail) -> int | None:
    """The horizon in candles, or None after reporting what does not fit the timeframe or
    this installation."""
    try:
        horizon = candles_in(model.label.horizon, timeframe)
    except ValueError as problem:
        fail((*base, "label", "horizon"), "duration", str(problem), None)
        return None
    step = timeframe_seconds(timeframe)
    if model.sample_every is not None and model.sample_every % step:
        message = f"sample_every must be a whole number of {timeframe} candles"
        fail((*base, "sample_every"), "duration", message, None)
        return None
    samples = model.train_window // (model.sample_every or step)
    if samples > MAX_SAMPLES:
        message = (
            f"a training window of {samples} samples; at most {MAX_SAMPLES} "
            "(train_window divided by sample_every, or by the timeframe)"
        )
        fail((*base, "train_window"), "range", message, "sample less often: sample_every: 1h")
        return None
    if model.estimator.kind == "lightgbm" and not lightgbm_installed():
        message = "estimator lightgbm needs the lightgbm package, which is not installed"
        hint = "pip install lightgbm, or use gradient_boosting"
        fail((*base, "estimator"), "estimator", message, hint)
        return None
    return horizon


def _enabled(
    model: Model, params: Mapping[str, ParamValue], base: PathKey, fail: Fail, used: set[str]
) -> bool:
    if isinstance(model.enabled, bool):
        return model.enabled
    param = model.enabled.removeprefix("$")
    used.add(model.enabled)
    value = params.get(param)
    if not isinstance(value, bool):
        what = "no such param" if param not in params else "not a true/false param"
        fail(
            (*base, "enabled"),
            "param",
            f"enabled: ${param} is {what}",
            "e.g. use_model: {value: true}",
        )
        return False
    return value
