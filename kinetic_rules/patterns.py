"""Regular expressions a strategy file supplies (the scanner's blacklist), matched in linear
time.

Python's `re` backtracks: a pattern such as `(a+)+$` takes exponential time on an ordinary
pair name, which would hang a backtest and freeze a live scanner at every refresh. RE2
guarantees time linear in the name's length and bounded memory, and refuses the few
constructs that need backtracking (backreferences, lookahead, lookbehind); the checker
reports those with their position, so `validate` and every later command agree on which
patterns are usable. This module sits below every stage so the checker, the backtest and
the live scanner all use the very same matcher.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import re2

MAX_PATTERN = 200  # characters; a pair blacklist needs a few dozen
MAX_PATTERNS = 200  # per strategy file
_MAX_MEMORY = 4 << 20  # bytes RE2 may use for one compiled pattern


class PatternError(ValueError):
    """A pattern that cannot be used, with a plain explanation of why."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the reason is reported by us, at the pattern's position
    options.max_mem = _MAX_MEMORY
    return options


_UNSUPPORTED = {
    "invalid perl operator: (?=": "lookahead (?=…) is not supported",
    "invalid perl operator: (?!": "negative lookahead (?!…) is not supported",
    "invalid perl operator: (?<": "lookbehind (?<=…) or (?<!…) is not supported",
    "invalid escape sequence: \\": "backreferences (\\1 …) and this escape are not supported",
}


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re2._Regexp:
    """The compiled pattern, or PatternError saying in plain words what is wrong."""
    if len(pattern) > MAX_PATTERN:
        raise PatternError(
            f"pattern is {len(pattern)} characters long; at most {MAX_PATTERN} are allowed"
        )
    try:
        return re2.compile(pattern, _options())
    except re2.error as problem:
        reason = _reason(problem)
        raise PatternError(reason) from None


def _reason(problem: Exception) -> str:
    raw = problem.args[0] if problem.args else problem
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for prefix, plain in _UNSUPPORTED.items():
        if text.startswith(prefix):
            return (
                f"{plain}: patterns are matched in guaranteed linear time, which rules out "
                f"constructs that need backtracking ({text})"
            )
    if "too large" in text or "repetition" in text:
        return f"pattern is too large or repeats too much ({text})"
    return f"bad pattern: {text}"


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    """Whether any pattern matches the whole of `name` (as `re.fullmatch` would)."""
    return any(compile_pattern(pattern).fullmatch(name) is not None for pattern in patterns)
