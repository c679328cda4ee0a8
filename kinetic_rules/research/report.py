"""Reports of `optimize` and `walkforward`: report.json (everything) and report.html (one
self-contained page, charts drawn with the backtest report's SVG helpers).

Names and values that came from the strategy file pass through `esc`, as in the backtest
report. Identical results give identical bytes: no clock time is written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from kinetic_rules.backtest.metrics import Metrics, drawdown, equity_curve
from kinetic_rules.backtest.report_files import plain
from kinetic_rules.backtest.report_html import CSS, esc
from kinetic_rules.backtest.report_svg import line_chart
from kinetic_rules.backtest.report_text import fmt_num, fmt_pct
from kinetic_rules.engine.model import BacktestResult
from kinetic_rules.research.objectives import METRICS, metric_values, objective_value
from kinetic_rules.research.run import Checked, WindowSearch, trial_rows
from kinetic_rules.research.space import current_values
from kinetic_rules.research.study import masked_url
from kinetic_rules.research.walkforward import WalkForwardResult, stability
from kinetic_rules.timeframes import format_duration

RATIO_METRICS = ("total_return", "cagr", "max_drawdown", "win_rate", "exposure", "expectancy_ratio")
SHOWN = ("sharpe", "sortino", "calmar", "total_return", "max_drawdown", "trades", "win_rate")


def fmt_metric(name: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if name in RATIO_METRICS:
        return fmt_pct(value)
    if name == "trades":
        return f"{value:,.0f}"
    return fmt_num(value)


def _page(title: str, sections: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(
        f'<th class="k">{esc(h)}</th>' if i == 0 else f"<th>{esc(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="k">{esc(c)}</td>' if i == 0 else f"<td>{esc(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<div class="wrap"><table><tr>{head}</tr>{body}</table></div>'


def _kv(facts: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in facts)
    return f'<table class="kv">{rows}</table>'


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_value_text(v)}" for k, v in params.items()) or "–"


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _objective_chart(search: WindowSearch, objective: str) -> str:
    """The objective of every finished trial in trial order, as a line over trial numbers
    drawn on a stand-in time axis (one trial per minute), with the best so far."""
    trials = [t for t in search.result.trials if t.value is not None]
    if not trials:
        return '<p class="none">no finished trial</p>'
    index = pd.DatetimeIndex(
        [pd.Timestamp(0, tz="UTC") + pd.Timedelta(minutes=t.number) for t in trials]
    )
    values = pd.Series([float(t.value or 0.0) for t in trials], index=index)
    return line_chart(values, title=f"{objective} by trial")


# -- optimize ------------------------------------------------------------------------------


def optimize_document(
    checked: Checked,
    search: WindowSearch,
    objective: str,
    best_result: BacktestResult,
    best_metrics: Metrics,
    study_url: str,
    written: Path | None,
) -> dict[str, Any]:
    best = search.result.best
    direction = METRICS[objective][0]
    document: dict[str, Any] = plain(
        {
            "strategy": checked.loaded.strategy.metadata.name,
            "file": checked.loaded.source.path,
            "strategy_sha256": checked.sha256,
            "study": masked_url(study_url),
            "objective": objective,
            "direction": direction,
            "constraints": [c.text for c in checked.constraints],
            "searched": checked.space.names,
            "trials_finished": len(search.result.trials),
            "trials_run_now": search.result.ran,
            "best_trial": None if best is None else best.number,
            "best_value": None if best is None else best.value,
            "best_params": search.best_values,
            "baseline": {"params": _baseline_params(checked), **search.baseline.values},
            "best_metrics": best_metrics.to_dict(),
            "tuned_file": None if written is None else str(written),
            "span": {"start": best_result.start, "end": best_result.end},
            "top_trials": trial_rows(search.result, 20, direction),
        }
    )
    return document


def _baseline_params(checked: Checked) -> dict[str, Any]:
    return dict(current_values(checked.loaded, checked.space))


def optimize_html(
    checked: Checked, search: WindowSearch, objective: str, best_result: BacktestResult
) -> str:
    best = search.result.best
    direction = METRICS[objective][0]
    curve = equity_curve(best_result)
    facts = [
        ("File", checked.loaded.source.path),
        ("sha256", checked.sha256),
        ("Objective", f"{objective} ({direction})"),
        ("Constraints", "; ".join(c.text for c in checked.constraints) or "none"),
        ("Searched", ", ".join(checked.space.names)),
        ("Trials finished", f"{len(search.result.trials):,}"),
        ("Best trial", "none met the constraints" if best is None else f"#{best.number}"),
        ("Chosen values", _params_text(search.best_values)),
        ("Span", f"{best_result.start:%Y-%m-%d %H:%M} → {best_result.end:%Y-%m-%d %H:%M}"),
    ]
    compare = [
        [
            name,
            fmt_metric(name, search.baseline.values.get(name)),
            fmt_metric(name, _best(search, name)),
        ]
        for name in METRICS
    ]
    rows = trial_rows(search.result, 20, direction)
    top = [
        [f"#{r['number']}", fmt_metric(objective, r["value"]), _params_text(r["params"])]
        + [fmt_metric(n, r.get(n)) for n in SHOWN]
        for r in rows
    ]
    sections = [
        f"<h1>Optimisation: {esc(checked.loaded.strategy.metadata.name)}</h1>",
        _kv(facts),
        '<p class="none">In-sample figures: measured on the same candles the search chose '
        "them on. Check them out of sample (walkforward) before trusting them.</p>",
        "<h2>The file's values and the best trial</h2>",
        _table(["Metric", "File's values", "Best trial"], compare),
        f"<h2>{esc(objective)} by trial</h2>",
        _objective_chart(search, objective),
        "<h2>Equity of the best trial</h2>",
        line_chart(curve, title="equity"),
        "<h2>Drawdown of the best trial</h2>",
        line_chart(drawdown(curve), title="drawdown", percent=True, how="min", area=True),
        "<h2>Best trials</h2>",
        _table(["Trial", objective, "Params", *SHOWN], top),
    ]
    return _page(f"Optimisation: {checked.loaded.strategy.metadata.name}", sections)


def _best(search: WindowSearch, name: str) -> float | None:
    best = search.result.best
    if best is None:
        return None
    value = best.user_attrs.get(name)
    return None if value is None else float(value)


# -- walkforward ---------------------------------------------------------------------------


def walkforward_document(
    checked: Checked, result: WalkForwardResult, objective: str
) -> dict[str, Any]:
    s = result.schedule
    document: dict[str, Any] = plain(
        {
            "strategy": checked.loaded.strategy.metadata.name,
            "file": checked.loaded.source.path,
            "strategy_sha256": checked.sha256,
            "objective": objective,
            "constraints": [c.text for c in checked.constraints],
            "searched": checked.space.names,
            "train_seconds": s.train.total_seconds(),
            "test_seconds": s.test.total_seconds(),
            "step_seconds": s.step.total_seconds(),
            "anchored": s.anchored,
            "out_of_sample_return": result.stitched_return(),
            "mean_pbo": _mean([w.pbo for w in result.windows]),
            "windows": [
                {
                    "index": w.window.index,
                    "train_start": w.window.train_start,
                    "train_end": w.window.train_end,
                    "test_end": w.window.test_end,
                    "params": w.params,
                    "in_sample": {k: w.in_sample.get(k) for k in METRICS},
                    "out_of_sample": w.out_of_sample.to_dict(),
                    "trials": len(w.search.result.trials),
                    "pbo": w.pbo,
                    "deflated_sharpe": w.deflated_sharpe,
                }
                for w in result.windows
            ],
            "stability": stability(result.windows),
            "equity": {
                t.isoformat(): float(v)
                for t, v in zip(pd.DatetimeIndex(result.equity.index), result.equity, strict=True)
            },
        }
    )
    return document


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def walkforward_html(checked: Checked, result: WalkForwardResult, objective: str) -> str:
    s = result.schedule
    facts = [
        ("File", checked.loaded.source.path),
        ("sha256", checked.sha256),
        ("Objective", objective),
        ("Constraints", "; ".join(c.text for c in checked.constraints) or "none"),
        ("Searched", ", ".join(checked.space.names)),
        (
            "Windows",
            f"{len(result.windows)}: train {_span(s.train)}, test {_span(s.test)}, "
            f"step {_span(s.step)}"
            + (", anchored (training always starts at the first candle)" if s.anchored else ""),
        ),
        ("Out-of-sample return (stitched)", fmt_pct(result.stitched_return())),
        (
            "Mean probability of backtest overfitting",
            fmt_pct(_mean([w.pbo for w in result.windows])),
        ),
    ]
    windows = [
        [
            str(w.window.index + 1),
            f"{w.window.train_start:%Y-%m-%d} → {w.window.train_end:%Y-%m-%d}",
            f"{w.window.train_end:%Y-%m-%d} → {w.window.test_end:%Y-%m-%d}",
            fmt_metric(objective, w.in_sample.get(objective)),
            fmt_metric(objective, _oos(w.out_of_sample, objective)),
            fmt_pct(w.in_sample.get("total_return")),
            fmt_pct(w.out_of_sample.total_return),
            f"{w.out_of_sample.trades:,}",
            fmt_pct(w.pbo),
            fmt_pct(w.deflated_sharpe),
        ]
        for w in result.windows
    ]
    params = [
        [str(w.window.index + 1), *[_value_text(v) for v in w.params.values()]]
        for w in result.windows
    ]
    names = list(result.windows[0].params) if result.windows else []
    spread = stability(result.windows)
    stab = [
        [
            name,
            fmt_num(spread[name]["mean"], 4),
            fmt_num(spread[name]["std"], 4),
            fmt_pct(spread[name]["cv"]),
            f"{spread[name]['distinct'] or 0:.0f}",
        ]
        for name in names
    ]
    sections = [
        f"<h1>Walk-forward: {esc(checked.loaded.strategy.metadata.name)}</h1>",
        _kv(facts),
        "<h2>Out-of-sample equity (test windows, stitched)</h2>",
        line_chart(result.equity, title="out-of-sample equity"),
        "<h2>Out-of-sample drawdown</h2>",
        line_chart(drawdown(result.equity), title="drawdown", percent=True, how="min", area=True)
        if len(result.equity)
        else '<p class="none">no data</p>',
        "<h2>In sample vs out of sample</h2>",
        _table(
            [
                "Window",
                "Train",
                "Test",
                f"{objective} in",
                f"{objective} out",
                "Return in",
                "Return out",
                "Trades out",
                "PBO",
                "Deflated Sharpe",
            ],
            windows,
        ),
        '<p class="none">PBO: the probability that the training window\'s best trial is below '
        "the median out of sample (combinatorially symmetric cross-validation over its days); "
        "above 50% the search mostly fits noise. Deflated Sharpe: the probability that the "
        "chosen trial's Sharpe beats the best of as many lucky guesses; below 95% it may be "
        "luck. See docs/research.md.</p>",
        "<h2>Chosen values per window</h2>",
        _table(["Window", *names], params),
        "<h2>Stability of the chosen values</h2>",
        _table(["Param", "Mean", "Spread (sd)", "Spread ÷ mean", "Distinct"], stab),
    ]
    return _page(f"Walk-forward: {checked.loaded.strategy.metadata.name}", sections)


def _span(delta: pd.Timedelta) -> str:
    return format_duration(int(delta.total_seconds()))


def _oos(metrics: Metrics, name: str) -> float | None:
    return objective_value(metric_values(metrics), name)


def write(folder: Path, document: dict[str, Any], html: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "report.json"
    json_path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    html_path = folder / "report.html"
    html_path.write_text(html)
    return [json_path, html_path]
