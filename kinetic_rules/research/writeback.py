"""Write chosen param values back into a copy of the strategy file.

Only the text of each `value:` scalar under `params:` changes: its position comes from the
loader's own map of the file, so comments, key order, quoting of everything else and
blank lines stay exactly as the author wrote them. A value written as a percentage is
written back as one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kinetic_rules.research.space import Dimension, SearchSpace, Value
from kinetic_rules.spec.loader import LoadedStrategy


def format_value(dimension: Dimension, value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if dimension.integer:
        return str(int(value))
    if dimension.percent:
        return f"{_short(round(float(value) * 100.0, 10))}%"
    return _short(float(value))


def _short(number: float) -> str:
    """The shortest text that reads back as the same float, never in exponent form
    for everyday magnitudes."""
    text = repr(float(number))
    if "e" in text or "E" in text:
        text = f"{number:.12f}".rstrip("0").rstrip(".")
    return text


def rewrite(loaded: LoadedStrategy, space: SearchSpace, values: Mapping[str, Value]) -> str:
    """The file's text with the searched params' values replaced."""
    text = loaded.source.text
    edits: list[tuple[int, int, str]] = []
    for dimension in space.dimensions:
        if dimension.name not in values:
            continue
        span = loaded.positions.span(("params", dimension.name, "value"))
        if span.source is None or span.end <= span.start:
            continue
        new = format_value(dimension, values[dimension.name])
        old = text[span.start : span.end]
        if old[:1] in "'\"" and not isinstance(values[dimension.name], bool):
            new = old[0] + new + old[0]
        edits.append((span.start, span.end, new))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def write_strategy(
    loaded: LoadedStrategy, space: SearchSpace, values: Mapping[str, Value], target: Path
) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(rewrite(loaded, space, values))
    return target
