"""Chosen values written back into the file: the file reads back with exactly those values,
whole numbers stay whole, percentages stay percentages, nothing else moves."""

from __future__ import annotations

import difflib

from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.research.space import current_values, search_space
from kinetic_rules.research.writeback import rewrite
from kinetic_rules.spec.loader import load_file, load_text
from tests.research.conftest import KE

LOADED = load_file(KE)
SPACE = search_space(LOADED, None)


def _values() -> st.SearchStrategy[dict[str, object]]:
    fields = {}
    for d in SPACE.dimensions:
        if d.integer:
            fields[d.name] = st.integers(int(d.low), int(d.high))
        else:
            fields[d.name] = st.floats(d.low, d.high, allow_nan=False).map(lambda v: round(v, 6))
    return st.fixed_dictionaries(fields)


@given(_values())
def test_written_values_read_back_and_nothing_else_changes(values: dict[str, object]) -> None:
    text = rewrite(LOADED, SPACE, values)  # type: ignore[arg-type]
    again = load_text(text, str(KE))
    read = current_values(again, SPACE)
    for d in SPACE.dimensions:
        if d.integer:
            assert read[d.name] == values[d.name] and isinstance(read[d.name], int)
        else:
            assert abs(float(read[d.name]) - float(values[d.name])) <= 1e-12  # type: ignore[arg-type]
        if d.percent:
            assert str(again.strategy.params[d.name].value).endswith("%")
    before, after = LOADED.source.text.splitlines(), text.splitlines()
    changed = [line for line in difflib.ndiff(before, after) if line.startswith(("- ", "+ "))]
    assert all("{value:" in line for line in changed)
