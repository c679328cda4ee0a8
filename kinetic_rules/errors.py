"""One error root for the whole project, and the spans that let errors point at a file.

    KineticError                 anything the user can act on; the CLI maps it to exit code 2
    ├── StrategyError            a strategy file is wrong: carries every Diagnostic found
    ├── DataError                candle data is missing, malformed or inconsistent
    ├── ExchangeError            the exchange refused or failed (see `temporary`)
    │   └── ExchangeUnreachable  no connection to it at all: exit code 3, not 2
    └── ConfigError              a command-line flag or setting is wrong

Anything else that escapes is a bug in kinetic-rules, never the user's fault.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, eq=False)
class Source:
    """The text of one input file, kept so that any span into it can show its line."""

    path: str
    text: str
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        starts = [0]
        starts.extend(i + 1 for i, ch in enumerate(self.text) if ch == "\n")
        object.__setattr__(self, "_line_starts", starts)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def line(self, number: int) -> str:
        if number < 1 or number > len(self._line_starts):
            return ""
        start = self._line_starts[number - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)].rstrip("\r")


@dataclass(frozen=True)
class Span:
    """A half-open range of characters in a Source; never part of equality."""

    source: Source | None
    start: int
    end: int

    @property
    def path(self) -> str:
        return self.source.path if self.source else "<input>"

    @property
    def line(self) -> int:
        return self.source.position(self.start)[0] if self.source else 1

    @property
    def column(self) -> int:
        return self.source.position(self.start)[1] if self.source else 1

    def location(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    def cover(self, other: Span | None) -> Span:
        if other is None or other.source is not self.source:
            return self
        return Span(self.source, min(self.start, other.start), max(self.end, other.end))


NO_SPAN = Span(None, 0, 0)


@dataclass(frozen=True)
class Diagnostic:
    """One finding about an input: where, what, and how to fix it."""

    severity: Severity
    code: str
    message: str
    span: Span = NO_SPAN
    hint: str | None = None

    def render(self) -> str:
        """file:line:col: severity[code]: message, then the source line with a caret."""
        where = f"{self.span.location()}: " if self.span.source is not None else ""
        head = f"{where}{self.severity}[{self.code}]: {self.message}"
        lines = [head]
        source = self.span.source
        if source is not None:
            line_no, col = source.position(self.span.start)
            text = source.line(line_no)
            if text:
                end_line, end_col = source.position(max(self.span.start, self.span.end - 1))
                width = (end_col - col + 1) if end_line == line_no else len(text) - col + 1
                width = max(1, min(width, len(text) - col + 1))
                shown, col, width = _window(text, col, width)
                gutter = f"{line_no:>4} | "
                lines.append(gutter + shown)
                lines.append(" " * (len(gutter) - 2) + "| " + " " * (col - 1) + "^" * width)
        if self.hint:
            lines.append(f"     = hint: {self.hint}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.span.path,
            "line": self.span.line,
            "column": self.span.column,
            "hint": self.hint,
        }


class KineticError(Exception):
    """Root of every error a user can act on."""

    exit_code = 2

    def render(self) -> str:
        return f"error: {self}"

    def to_json(self) -> list[dict[str, object]]:
        return [{"severity": "error", "code": "error", "message": str(self)}]


class StrategyError(KineticError):
    """A strategy file has one or more errors; all of them are carried, in file order."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(
            diagnostics, key=lambda d: (d.span.path, d.span.start, d.code, d.message)
        )
        errors = [d for d in self.diagnostics if d.severity == "error"]
        first = errors[0] if errors else (self.diagnostics[0] if self.diagnostics else None)
        summary = first.message if first else "invalid strategy"
        super().__init__(f"{len(errors)} error(s); first: {summary}")

    def render(self) -> str:
        return render_diagnostics(self.diagnostics)

    def to_json(self) -> list[dict[str, object]]:
        return [d.to_json() for d in self.diagnostics]


class DataError(KineticError):
    """Candle data is missing, malformed or inconsistent."""


class ConfigError(KineticError):
    """A command-line option or setting is wrong."""


class ExchangeError(KineticError):
    """The exchange failed; `temporary` errors may be retried, the others need a human."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


class ExchangeUnreachable(ExchangeError):
    """No connection to the exchange (offline, name not resolved, refused, timed out): not
    the user's input, so its own exit code, which scripts can tell from a bad flag."""

    exit_code = 3

    def __init__(self, message: str) -> None:
        super().__init__(message, temporary=True)


SHOWN_LINE = 120  # characters of a source line shown under an error; long lines are cut


def _window(text: str, col: int, width: int) -> tuple[str, int, int]:
    """The part of a long line around the caret, so an error on a generated or minified
    line stays one screen wide; returns the text shown and the caret's column and width."""
    if len(text) <= SHOWN_LINE:
        return text, col, width
    start = max(0, min(col - 1 - SHOWN_LINE // 3, len(text) - SHOWN_LINE))
    end = start + SHOWN_LINE
    shown = ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
    col = col - start + (1 if start else 0)
    return shown, col, max(1, min(width, SHOWN_LINE - (col - 1 - (1 if start else 0))))


def render_diagnostics(diagnostics: list[Diagnostic]) -> str:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    body = "\n\n".join(d.render() for d in diagnostics)
    tail = f"{errors} error(s), {warnings} warning(s)"
    return f"{body}\n\n{tail}" if body else tail


def diagnostics_json(diagnostics: list[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diagnostics], indent=2)


@dataclass(frozen=True)
class Snippet:
    """Text cut out of a Source (a YAML value), remembering where each character came from."""

    text: str
    source: Source | None = None
    base: int = 0  # file offset of text[0] when the text is a contiguous slice
    offsets: tuple[int, ...] | None = None  # file offset of every character otherwise

    def span(self, start: int, end: int) -> Span:
        if self.offsets is None:
            return Span(self.source, self.base + start, self.base + end)
        if not self.offsets:
            return Span(self.source, self.base, self.base)
        last = len(self.offsets) - 1
        first = self.offsets[min(start, last)] + (1 if start > last else 0)
        stop = self.offsets[min(max(end - 1, start), last)] + 1
        return Span(self.source, first, max(first, stop))

    def whole(self) -> Span:
        return self.span(0, len(self.text))
