"""How an error shows its source line: the caret under the problem, on one screen."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.errors import SHOWN_LINE, Diagnostic, Source, Span


def _shown(text: str, start: int, end: int) -> tuple[str, str]:
    source = Source("s.yaml", text)
    rendered = Diagnostic("error", "x", "bad", Span(source, start, end)).render().splitlines()
    return rendered[1].split(" | ", 1)[1], rendered[2].split("| ", 1)[1]


def test_a_short_line_is_shown_whole_with_the_caret_under_the_span() -> None:
    line, caret = _shown("entry: rsi(close, 14) > 7O", 24, 26)
    assert line == "entry: rsi(close, 14) > 7O"
    assert caret == " " * 24 + "^^"


@given(
    st.integers(min_value=SHOWN_LINE + 1, max_value=20_000),
    st.data(),
)
def test_a_long_line_is_cut_around_the_caret_which_still_points_at_the_span(
    length: int, data: st.DataObject
) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(length))
    start = data.draw(st.integers(min_value=0, max_value=length - 1))
    end = data.draw(st.integers(min_value=start + 1, max_value=min(length, start + 300)))
    line, caret = _shown(text, start, end)
    assert len(line) <= SHOWN_LINE + 2  # plus an ellipsis at either end
    column = len(caret) - len(caret.lstrip(" "))
    assert line[column] == text[start]  # the caret sits on the first character of the span
    width = len(caret.strip(" "))
    assert 1 <= width <= end - start
    assert line[column : column + width] == text[start : start + width]
