"""The models stage on real candles: point in time by construction, seeded, cached."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.models import ModelCache, ModelSettings, predict_rows, rolling_accuracy
from kinetic_rules.models.training import NS, Samples
from tests.conftest import fixture_candles

STEP = 300 * NS  # 5m candles
SETTINGS = ModelSettings(
    name="trend",
    kind="random_forest",
    trees=10,
    depth=3,
    train_window=10 * 86_400,
    retrain_every=2 * 86_400,
    sample_every=1800,
    min_samples=100,
    seed=3,
    horizon=48,
)


def arrays(pair: str = "BTC/USDT") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (returns over 1 and 4 hours, volume ratio), the label (price higher 4 hours
    later, as read at the end of the horizon) and the open times of real 5m candles."""
    candles = fixture_candles(pair, "5m")
    close, volume = candles["close"].to_numpy(), candles["volume"].to_numpy()
    shifted = lambda values, n: np.concatenate((np.full(n, np.nan), values[:-n]))  # noqa: E731
    features = np.column_stack(
        (
            close / shifted(close, 12) - 1,
            close / shifted(close, 48) - 1,
            volume / shifted(volume, 1),
        )
    )
    with np.errstate(invalid="ignore"):
        label = close > _shift(close, 48)
    times = candles.index.as_unit("ns").asi8.astype(np.int64)
    return features, label, times


def _shift(values: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate((np.full(n, np.nan), values[:-n]))


def test_no_training_sample_has_a_label_known_after_its_retraining_point() -> None:
    features, label, times = arrays()
    samples = Samples.build(SETTINGS, features, label, times, STEP)
    closes = times + STEP
    for point in np.unique((closes // (2 * 86_400 * NS)) * (2 * 86_400 * NS)):
        rows = samples.at(SETTINGS, int(point))
        # the candle each label is read at closed at or before the point …
        assert np.all(closes[rows + SETTINGS.horizon] <= point)
        # … and every sample is within the training window, on the sampling grid
        assert np.all(times[rows] >= point - SETTINGS.train_window * NS)
        assert np.all(times[rows] % (1800 * NS) == 0)


@pytest.mark.parametrize("cut", [3000, 5555, 8000])
def test_cutting_the_data_at_t_leaves_every_prediction_up_to_t_unchanged(cut: int) -> None:
    features, label, times = arrays()
    full, _ = predict_rows(SETTINGS, features, label, times, STEP, 0, ModelCache(None))
    part, _ = predict_rows(
        SETTINGS, features[:cut], label[:cut], times[:cut], STEP, 0, ModelCache(None)
    )
    assert np.isfinite(part).sum() > 1000  # models were trained before the cut
    np.testing.assert_array_equal(part, full[:cut])


def test_predictions_are_probabilities_and_the_same_seed_gives_the_same_ones() -> None:
    features, label, times = arrays("ETH/USDT")
    first, _ = predict_rows(SETTINGS, features, label, times, STEP, 0, ModelCache(None))
    again, _ = predict_rows(SETTINGS, features, label, times, STEP, 0, ModelCache(None))
    other, _ = predict_rows(
        replace(SETTINGS, seed=4), features, label, times, STEP, 0, ModelCache(None)
    )
    known = first[np.isfinite(first)]
    assert len(known) > 1000 and np.all((known >= 0) & (known <= 1))  # property 11
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other, equal_nan=True)


def test_a_failing_span_is_undefined_and_recorded_while_the_others_predict() -> None:
    features, label, times = arrays()
    broken = features.copy()
    first_week = times < times[0] + 12 * 86_400 * NS
    broken[first_week & (np.arange(len(times)) % 2 == 0), 0] = np.nan  # fewer usable samples
    values, records = predict_rows(
        replace(SETTINGS, min_samples=230), broken, label, times, STEP, 0, ModelCache(None)
    )
    failed = [r for r in records if r.problem is not None]
    trained = [r for r in records if r.problem is None]
    assert failed and trained
    assert any("fewer than min_samples 230" in str(r.problem) for r in failed)
    closes = times + STEP
    for record in failed:
        span = (closes // (2 * 86_400 * NS)) * (2 * 86_400 * NS) == record.point
        assert np.all(np.isnan(values[span]))
    assert all(r.accuracy is not None and r.importances for r in trained)


def test_one_class_is_no_model() -> None:
    features, _, times = arrays()
    values, records = predict_rows(
        SETTINGS, features, np.ones(len(times), bool), times, STEP, 0, ModelCache(None)
    )
    assert np.all(np.isnan(values))
    enough = [r for r in records if r.samples >= SETTINGS.min_samples]
    assert enough and all("nothing to tell apart" in str(r.problem) for r in enough)


def test_a_second_run_reads_its_predictions_from_the_disk_cache(tmp_path: Path) -> None:
    features, label, times = arrays("SOL/USDT")
    cold = ModelCache(tmp_path)
    first, first_records = predict_rows(SETTINGS, features, label, times, STEP, 0, cold)
    assert cold.fits > 5
    warm = ModelCache(tmp_path)  # a new process: nothing in memory
    second, second_records = predict_rows(SETTINGS, features, label, times, STEP, 0, warm)
    # the same inputs: the whole series is read back, no model is even loaded
    assert warm.fits == 0 and warm.loads == 0 and warm.reused == 1
    np.testing.assert_array_equal(first, second)
    assert second_records == first_records
    # one candle fewer: another series, but every model it needs is on disk
    cut = ModelCache(tmp_path)
    shorter, _ = predict_rows(SETTINGS, features[:-1], label[:-1], times[:-1], STEP, 0, cut)
    assert cut.fits == 0 and cut.loads == cold.fits and cut.reused == 0
    np.testing.assert_array_equal(shorter, first[:-1])
    changed = ModelCache(tmp_path)  # another setting: trained again
    predict_rows(replace(SETTINGS, depth=4), features, label, times, STEP, 0, changed)
    assert changed.fits == cold.fits


def test_a_stale_or_foreign_cache_file_is_trained_again(tmp_path: Path) -> None:
    features, label, times = arrays()
    predict_rows(SETTINGS, features, label, times, STEP, 0, ModelCache(tmp_path))
    for path in tmp_path.glob("*.pickle"):
        path.write_bytes(b"not a model")
    again = ModelCache(tmp_path)
    predict_rows(SETTINGS, features, label, times, STEP, 0, again)
    assert again.fits > 0 and again.loads == 0


@given(
    said=st.lists(st.floats(0, 1) | st.just(float("nan")), min_size=1, max_size=80),
    happened=st.lists(st.booleans(), min_size=80, max_size=80),
    horizon=st.integers(0, 10),
    window=st.integers(1, 20),
    later=st.integers(0, 79),
)
def test_accuracy_at_t_never_reads_a_label_known_after_t(
    said: list[float], happened: list[bool], horizon: int, window: int, later: int
) -> None:
    count = len(said)
    probability, label = np.asarray(said), np.asarray(happened[:count])
    accuracy = rolling_accuracy(probability, label, horizon, window)
    t = min(later, count - 1)
    # Labels read after t (the outcome of predictions younger than the horizon) changed:
    flipped = label.copy()
    flipped[t + 1 :] = ~flipped[t + 1 :]
    np.testing.assert_array_equal(
        rolling_accuracy(probability, flipped, horizon, window)[: t + 1], accuracy[: t + 1]
    )
    # and what it says is the share right among the last `window` scored by t
    scored = [
        float((probability[i] >= 0.5) == label[i + horizon])
        for i in range(max(0, t - horizon + 1))
        if np.isfinite(probability[i])
    ]
    if len(scored) >= window:
        assert accuracy[t] == pytest.approx(sum(scored[-window:]) / window)
    else:
        assert np.isnan(accuracy[t])
