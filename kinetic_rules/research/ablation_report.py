"""An ablation's results as a table: the terminal, ablation.csv, ablation.json, ablation.html.

The baseline row holds the backtest's own figures; every other row the figure with its
part switched off and the change from the baseline (the delta). A ratio's delta is in
percentage points. Files are deterministic (no wall-clock time), written whole or not at
all, and pass through the one mask like every report.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from kinetic_rules.backtest.report_files import plain
from kinetic_rules.data.atomic import atomic_write
from kinetic_rules.research.ablation import AblationResult, Outcome
from kinetic_rules.secrets import mask

FORMAT_VERSION = 1

# (key in Metrics.to_dict(), heading, how to show it)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("total_return", "return", "ratio"),
    ("profit_total", "profit", "money"),
    ("trades", "trades", "count"),
    ("win_rate", "win rate", "ratio"),
    ("max_drawdown", "max drawdown", "ratio"),
    ("sharpe", "Sharpe", "number"),
    ("sortino", "Sortino", "number"),
    ("calmar", "Calmar", "number"),
    ("profit_factor", "profit factor", "number"),
    ("expectancy", "expectancy", "money"),
    ("exposure", "exposure", "ratio"),
)
TERMINAL = ("total_return", "trades", "win_rate", "max_drawdown", "sharpe")


def delta(outcome: Outcome, baseline: Outcome, key: str) -> float | int | None:
    """The variant's figure minus the baseline's; None when either does not exist."""
    if outcome.metrics is None or baseline.metrics is None:
        return None
    value, base = outcome.metrics.get(key), baseline.metrics.get(key)
    if not isinstance(value, int | float) or not isinstance(base, int | float):
        return None
    if isinstance(value, int) and isinstance(base, int):
        return value - base  # counts stay whole
    return float(value) - float(base)


def ablation_document(result: AblationResult) -> dict[str, Any]:
    """The whole of ablation.json as a dict."""
    baseline = result.baseline
    variants = []
    for outcome in result.outcomes:
        variant = outcome.variant
        variants.append(
            {
                "label": variant.label,
                "kind": variant.kind,
                "parts": list(variant.addresses),
                "switched_off": variant.switched_off,
                "error": outcome.error,
                "notes": list(outcome.notes),
                "trades_from": outcome.trades_from,
                "metrics": outcome.metrics,
                "deltas": {key: delta(outcome, baseline, key) for key, _, _ in COLUMNS},
            }
        )
    document = {
        "format": FORMAT_VERSION,
        "strategy": {
            "name": result.strategy_name,
            "file": result.strategy_file,
            "sha256": result.strategy_sha256,
        },
        "pairs": list(result.pairs),
        "timerange": {"start": result.start, "end": result.end},
        "variants": variants,
    }
    cleaned: dict[str, Any] = plain(document)
    return cleaned


def ablation_csv(result: AblationResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["label", "kind", "parts", "switched_off", "error"]
    for key, _, _ in COLUMNS:
        header += [key, f"{key}_delta"]
    writer.writerow(header)
    for outcome in result.outcomes:
        variant = outcome.variant
        texts = (variant.label, variant.kind, " ".join(variant.addresses), variant.switched_off)
        row: list[Any] = [_text(text) for text in (*texts, outcome.error or "")]
        for key, _, _ in COLUMNS:
            value = outcome.metrics.get(key) if outcome.metrics else None
            row += [_cell(value), _cell(delta(outcome, result.baseline, key))]
        writer.writerow(row)
    return buffer.getvalue()


def _text(value: str) -> str:
    """Text a spreadsheet would run as a formula gets a leading quote."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _cell(value: Any) -> str:
    value = plain(value)
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def show(value: Any, unit: str, signs: bool = True) -> str:
    """A figure as a person reads it: 1.23% for ratios (1.23 without `signs`), 2 decimals
    for money."""
    if value is None or not isinstance(value, int | float):
        return "–"
    if unit == "ratio":
        return f"{value * 100:.3g}" + ("%" if signs else "")
    if unit == "count":
        return f"{int(value):,}"
    return f"{value:,.2f}"


def show_delta(value: float | int | None, unit: str, signs: bool = True) -> str:
    """A change with its sign: +0.52 pp for ratios (percentage points; +0.52 without
    `signs`), +3 for counts."""
    if value is None:
        return "–"
    if unit == "ratio":
        return f"{value * 100:+.3g}" + (" pp" if signs else "")
    if unit == "count":
        return f"{int(value):+,}"
    return f"{value:+,.2f}"


def cells(
    outcome: Outcome, baseline: Outcome, keys: tuple[str, ...], signs: bool = True
) -> list[str]:
    """One table row's figures: the baseline's own, a variant's deltas. Without `signs`,
    ratios carry no % or pp (the column heading says it)."""
    units = {key: unit for key, _, unit in COLUMNS}
    if outcome.metrics is None:
        return ["–" for _ in keys]
    if outcome is baseline:
        return [show(outcome.metrics.get(key), units[key], signs) for key in keys]
    return [show_delta(delta(outcome, baseline, key), units[key], signs) for key in keys]


def render_html(result: AblationResult) -> str:
    baseline = result.baseline
    keys = tuple(key for key, _, _ in COLUMNS)
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in COLUMNS)
    rows = []
    for outcome in result.outcomes:
        variant = outcome.variant
        label = f"<td><code>{html.escape(variant.label)}</code></td>"
        kind = f"<td>{html.escape(variant.kind)}</td>"
        off = f"<td>{html.escape(variant.switched_off)}</td>"
        if outcome.error is not None:
            note = html.escape(f"could not run: {outcome.error}")
            rows.append(f"<tr>{label}{kind}{off}<td colspan='{len(keys)}'>{note}</td></tr>")
            continue
        figures = "".join(
            f"<td class='{_tone(outcome, baseline, key)}'>{html.escape(text)}</td>"
            for key, text in zip(keys, cells(outcome, baseline, keys), strict=True)
        )
        rows.append(f"<tr>{label}{kind}{off}{figures}</tr>")
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in baseline.notes)
    notes = f"<ul class='notes'>{notes}</ul>" if notes else ""
    title = html.escape(f"Ablation: {result.strategy_name}")
    pairs = html.escape(", ".join(result.pairs))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; }}
th:nth-child(-n+3), td:nth-child(-n+3) {{ text-align: left; }}
tr:first-child td {{ font-weight: bold; }}
.up {{ color: #116611; }} .down {{ color: #aa1111; }}
</style></head><body>
<h1>{title}</h1>
<p>{html.escape(result.strategy_file)} on {pairs}. The first row is the backtest as
written; every other row is the backtest with that part switched off, shown as the change
from the first row (ratios in percentage points). Green: better without the part (the part
costs you); red: worse without it (the part earns its place). Every row trades the
baseline's span.</p>
{notes}<table><thead><tr><th>part</th><th>kind</th><th>switched off to</th>{head}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
</body></html>
"""


def _tone(outcome: Outcome, baseline: Outcome, key: str) -> str:
    """Higher is better for every column but trades and exposure, which are neither."""
    change = delta(outcome, baseline, key)
    if outcome is baseline or change is None or key in ("trades", "exposure") or change == 0:
        return ""
    return "up" if change > 0 else "down"


def _writer(data: bytes) -> Callable[[BinaryIO], object]:
    return lambda handle: handle.write(data)


def write_ablation(result: AblationResult, directory: Path) -> dict[str, Path]:
    """ablation.json, ablation.csv and ablation.html in `directory` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    document = json.dumps(ablation_document(result), sort_keys=True, indent=2, allow_nan=False)
    contents = {
        "json": ("ablation.json", document + "\n"),
        "csv": ("ablation.csv", ablation_csv(result)),
        "html": ("ablation.html", render_html(result)),
    }
    written: dict[str, Path] = {}
    for kind, (name, text) in contents.items():
        path = directory / name
        atomic_write(path, _writer(mask(text).encode("utf-8")))
        written[kind] = path
    return written
