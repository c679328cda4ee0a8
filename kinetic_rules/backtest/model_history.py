"""Each model's training history over a backtest's candles, and its HTML page.

For every pair and retraining point: the training window, how many samples (and how many
positive), whether a model came out (and why not), its accuracy out of sample on the span
it predicted, its calibration (predicted against observed, per fifth of probability) and
the weight of each feature. `kinetic-rules models FILE` prints it and writes the page.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kinetic_rules.backtest.report_html import _page, _table, esc
from kinetic_rules.backtest.report_svg import line_chart
from kinetic_rules.compile.evaluate import Evaluator, Feed
from kinetic_rules.compile.plan import Plan
from kinetic_rules.errors import DataError
from kinetic_rules.lang import ast
from kinetic_rules.models import TrainingRecord


@dataclass(frozen=True)
class ModelHistory:
    name: str
    kind: str
    features: tuple[str, ...]
    records: tuple[TrainingRecord, ...]  # by pair, then retraining point

    @property
    def trained(self) -> list[TrainingRecord]:
        return [r for r in self.records if r.problem is None]

    def accuracy(self) -> float | None:
        """Out of sample over every span, each prediction counting once."""
        scored = [(r.accuracy, r.scored) for r in self.trained if r.accuracy is not None]
        total = sum(n for _, n in scored)
        return sum(a * n for a, n in scored) / total if total else None

    def importances(self) -> list[tuple[str, float]]:
        """Each feature's weight, averaged over every trained window, largest first."""
        rows = [r.importances for r in self.trained if len(r.importances) == len(self.features)]
        if not rows:
            return []
        mean = np.mean(np.asarray(rows), axis=0)
        return sorted(zip(self.features, mean.tolist(), strict=True), key=lambda x: -x[1])

    def calibration(self) -> list[tuple[float, float, int]]:
        """Predicted against observed per fifth of probability, over every span."""
        sums = np.zeros((5, 3))
        for record in self.trained:
            for predicted, observed, count in record.calibration:
                index = min(int(predicted * 5), 4)
                sums[index] += (predicted * count, observed * count, count)
        return [(p / n, o / n, int(n)) for p, o, n in sums if n]


def collect(
    plan: Plan,
    feed: Feed,
    pairs: list[str],
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[ModelHistory], list[str]]:
    """Evaluate the plan on every pair (training or reading each model from the cache) and
    gather the trainings whose retraining point falls in start..end; notes for skipped pairs."""
    evaluator = Evaluator(plan, feed)
    notes: list[str] = []
    for done, pair in enumerate(pairs):
        if progress:
            progress("models", done, len(pairs))
        try:
            evaluator.evaluate(pair)
        except DataError as problem:
            notes.append(f"{pair}: {problem}")
    lo = start.value if start is not None else None
    hi = end.value if end is not None else None
    nodes = _models(plan)
    histories = []
    for name, node in nodes.items():
        records = [
            r
            for r in evaluator.model_records
            if r.model == name and (lo is None or r.point >= lo) and (hi is None or r.point <= hi)
        ]
        records.sort(key=lambda r: (r.pair, r.point))
        features = tuple(_feature_names(plan, name))
        histories.append(ModelHistory(name, node.settings.kind, features, tuple(records)))
    return histories, notes


def model_notes(records: list[TrainingRecord]) -> list[str]:
    """What a report says of the retraining windows that gave no model (property 26: the
    strategy ran on without it there)."""
    notes = []
    for name in sorted({r.model for r in records}):
        mine = [r for r in records if r.model == name]
        failed = [r for r in mine if r.problem is not None]
        if not failed:
            continue
        first = failed[0]
        notes.append(
            f"model {name}: {len(failed)} of {len(mine)} retraining windows gave no model "
            f"(e.g. {first.pair} {when(first.point)}: {first.problem}); predict({name}) is "
            "undefined there and the rest of the strategy ran on. "
            "`kinetic-rules models` lists them all"
        )
    return notes


def _models(plan: Plan) -> dict[str, ast.Predict]:
    found: dict[str, ast.Predict] = {}
    for root in plan.market:
        for node in root.walk():
            if isinstance(node, ast.Predict):
                found.setdefault(node.model, node)
    return found


def _feature_names(plan: Plan, name: str) -> list[str]:
    model = plan.strategy.spec.models.get(name)
    return [feature for feature, _ in model.feature_items()] if model else []


def when(ns: int) -> str:
    return f"{pd.Timestamp(ns, tz='UTC'):%Y-%m-%d %H:%M}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def window_rows(history: ModelHistory) -> list[list[str]]:
    rows = []
    for r in history.records:
        top = ", ".join(
            f"{f} {w:.2f}"
            for f, w in sorted(
                zip(history.features, r.importances, strict=False), key=lambda x: -x[1]
            )[:3]
        )
        positives = f"{r.positives} ({percent(r.positives / r.samples)})" if r.samples else "0"
        rows.append(
            [
                r.pair,
                when(r.point),
                f"{when(r.window_start)} … {when(r.point)}",
                str(r.samples),
                positives,
                r.problem or "trained",
                str(r.scored),
                percent(r.accuracy),
                " ".join(f"{100 * p:.0f}→{100 * o:.0f}" for p, o, _ in r.calibration),
                top,
            ]
        )
    return rows


WINDOW_COLUMNS = (
    "pair", "retrained", "window", "samples", "positive", "model", "scored",
    "accuracy", "calibration (predicted→observed %)", "top features",
)  # fmt: skip


def render(histories: list[ModelHistory], strategy: str, notes: list[str]) -> str:
    """The page: per model, its totals, feature weights, calibration and every window."""
    parts = [f"<h1>Models of {esc(strategy)}</h1>"]
    for history in histories:
        trained = history.trained
        parts.append(f"<h2>{esc(history.name)} ({esc(history.kind)})</h2>")
        failed = len(history.records) - len(trained)
        parts.append(
            f"<p>{len(history.records)} trainings, {failed} without a model; out-of-sample "
            f"accuracy {esc(percent(history.accuracy()))}.</p>"
        )
        series = pd.Series(
            [r.accuracy for r in trained if r.accuracy is not None],
            index=pd.to_datetime([r.point for r in trained if r.accuracy is not None], utc=True),
        ).sort_index()
        with contextlib.suppress(ValueError):  # a single point has no line
            if len(series) > 1:
                mean = series.groupby(level=0).mean()
                parts.append(line_chart(mean, title="accuracy per window", percent=True))
        parts.append("<h3>Feature weights (mean over the windows)</h3>")
        parts.append(
            _table(["feature", "weight"], [[f, f"{w:.3f}"] for f, w in history.importances()])
        )
        parts.append("<h3>Calibration</h3>")
        parts.append(
            _table(
                ["predicted", "observed", "predictions"],
                [[percent(p), percent(o), str(n)] for p, o, n in history.calibration()],
            )
        )
        parts.append("<h3>Every window</h3>")
        parts.append(_table(list(WINDOW_COLUMNS), window_rows(history)))
    for note in notes:
        parts.append(f'<p class="none">{esc(note)}</p>')
    return _page(f"Models of {strategy}", "".join(parts))
