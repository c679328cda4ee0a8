"""Text → AST. The grammar lives in grammar.lark; this module only builds nodes and
turns Lark's exceptions into diagnostics that point into the YAML file."""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedInput, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError
from lark.tree import Meta

from kinetic_rules.errors import Diagnostic, Snippet, StrategyError
from kinetic_rules.lang import ast, grammar_tables

MAX_LENGTH = 4000  # characters in one expression
MAX_DEPTH = 60  # nesting of the tree; deeper expressions are unreadable anyway

_TOKEN_NAMES = {
    "NUMBER": "a number",
    "PERCENT": "a percentage",
    "DURATION": "a duration",
    "NAME": "a name",
    "PARAM": "a $param",
    "PAIR": "a pair such as BTC/USDT",
    "STRING": "a quoted word",
    "COMP_OP": "a comparison",
    "ADD_OP": "+ or -",
    "MUL_OP": "* or /",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "AT": "`@`",
    "EQUAL": "`=`",
    "MINUS": "`-`",
    "$END": "the end of the expression",
}


@cache
def _lark() -> Lark:
    grammar = grammar_tables.grammar_text()
    return grammar_tables.load(grammar) or grammar_tables.build(grammar)


class _Builder(Transformer[Token, ast.Node]):
    def __init__(self, snippet: Snippet) -> None:
        super().__init__()
        self._snippet = snippet

    def _span(self, item: Meta | Token) -> Any:
        if isinstance(item, Token):
            return self._snippet.span(item.start_pos or 0, item.end_pos or 0)
        if getattr(item, "empty", True):
            return self._snippet.whole()
        return self._snippet.span(item.start_pos, item.end_pos)

    # literals and names -------------------------------------------------------------
    def _finite(self, token: Token, text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            span = self._span(token)
            message = f"{token} is too large to be a number"
            raise StrategyError([Diagnostic("error", "syntax", message, span)])
        return value

    def number(self, items: list[Token]) -> ast.Node:
        return ast.Number(self._finite(items[0], items[0]), span=self._span(items[0]))

    def percent(self, items: list[Token]) -> ast.Node:
        return ast.Percent(self._finite(items[0], items[0][:-1]), span=self._span(items[0]))

    def duration(self, items: list[Token]) -> ast.Node:
        text = str(items[0])
        return ast.Duration(int(text[:-1]), text[-1], span=self._span(items[0]))

    @v_args(meta=True)
    def true(self, meta: Meta, _: list[Any]) -> ast.Node:
        return ast.Bool(True, span=self._span(meta))

    @v_args(meta=True)
    def false(self, meta: Meta, _: list[Any]) -> ast.Node:
        return ast.Bool(False, span=self._span(meta))

    def string(self, items: list[Token]) -> ast.Node:
        return ast.String(str(items[0])[1:-1], span=self._span(items[0]))

    def param(self, items: list[Token]) -> ast.Node:
        return ast.Param(str(items[0])[1:], span=self._span(items[0]))

    def name(self, items: list[Token]) -> ast.Node:
        return ast.Name(str(items[0]), span=self._span(items[0]))

    @v_args(meta=True)
    def list_(self, meta: Meta, items: list[ast.Node]) -> ast.Node:
        return ast.ListLit(tuple(items), span=self._span(meta))

    # calls --------------------------------------------------------------------------
    @v_args(meta=True)
    def call(self, meta: Meta, items: list[Any]) -> ast.Node:
        func = str(items[0])
        arguments = items[1] if len(items) > 1 else []
        args = tuple(a for a in arguments if isinstance(a, ast.Node))
        kwargs = tuple(a for a in arguments if isinstance(a, tuple))
        return ast.Call(func, args, kwargs, span=self._span(meta))

    def arguments(self, items: list[Any]) -> list[Any]:
        return items

    def kwarg(self, items: list[Any]) -> tuple[str, ast.Node]:
        return (str(items[0]), items[1])

    # operators ----------------------------------------------------------------------
    @v_args(meta=True)
    def binary(self, meta: Meta, items: list[Any]) -> ast.Node:
        return ast.Binary(str(items[1]), items[0], items[2], span=self._span(meta))

    @v_args(meta=True)
    def unary(self, meta: Meta, items: list[Any]) -> ast.Node:
        return ast.Unary(str(items[0]), items[1], span=self._span(meta))

    @v_args(meta=True)
    def not_(self, meta: Meta, items: list[Any]) -> ast.Node:
        return ast.Unary("not", items[0], span=self._span(meta))

    @v_args(meta=True)
    def and_(self, meta: Meta, items: list[Any]) -> ast.Node:
        return ast.Binary("and", items[0], items[1], span=self._span(meta))

    @v_args(meta=True)
    def or_(self, meta: Meta, items: list[Any]) -> ast.Node:
        return ast.Binary("or", items[0], items[1], span=self._span(meta))

    @v_args(meta=True)
    def comparison(self, meta: Meta, items: list[Any]) -> ast.Node:
        rest = tuple((str(items[i]), items[i + 1]) for i in range(1, len(items), 2))
        return ast.Compare(items[0], rest, span=self._span(meta))

    @v_args(meta=True)
    def if_else(self, meta: Meta, items: list[Any]) -> ast.Node:
        return ast.IfElse(items[0], items[1], items[2], span=self._span(meta))

    # postfix ------------------------------------------------------------------------
    @v_args(meta=True)
    def history(self, meta: Meta, items: list[Any]) -> ast.Node:
        return ast.History(items[0], items[1], span=self._span(meta))

    def offset_number(self, items: list[Token]) -> ast.Node:
        return ast.Number(float(items[0]), span=self._span(items[0]))

    @v_args(meta=True)
    def offset_negative(self, meta: Meta, items: list[Token]) -> ast.Node:
        return ast.Number(-float(items[0]), span=self._span(meta))

    def offset_param(self, items: list[Token]) -> ast.Node:
        return ast.Param(str(items[0])[1:], span=self._span(items[0]))

    @v_args(meta=True)
    def pair_ref(self, meta: Meta, items: list[Any]) -> ast.Node:
        operand, pair = items[0], str(items[1])
        if isinstance(operand, ast.Context) and operand.pair is None:
            return ast.Context(operand.operand, operand.timeframe, pair, span=self._span(meta))
        return ast.Context(operand, None, pair, span=self._span(meta))

    @v_args(meta=True)
    def timeframe_ref(self, meta: Meta, items: list[Any]) -> ast.Node:
        operand, timeframe = items[0], str(items[1])
        if isinstance(operand, ast.Context) and operand.timeframe is None:
            return ast.Context(operand.operand, timeframe, operand.pair, span=self._span(meta))
        return ast.Context(operand, timeframe, None, span=self._span(meta))


def parse(snippet: Snippet) -> ast.Node:
    """Parse one expression; raise StrategyError with a positioned diagnostic."""
    text = snippet.text
    if not text.strip():
        raise _error(snippet, 0, len(text), "empty expression", "write a condition or a value")
    if len(text) > MAX_LENGTH:
        raise _error(
            snippet,
            0,
            len(text),
            f"expression longer than {MAX_LENGTH} characters",
            "split it into named indicators or conditions",
        )
    if _bracket_depth(text) > MAX_DEPTH:
        raise _too_deep(snippet)
    try:
        tree = _lark().parse(text)
        node = _Builder(snippet).transform(tree)
    except UnexpectedInput as problem:
        raise _syntax_error(snippet, problem) from None
    except VisitError as wrapped:  # an exception inside a builder method
        if isinstance(wrapped.orig_exc, RecursionError):
            raise _too_deep(snippet) from None
        raise wrapped.orig_exc from None
    except RecursionError:
        raise _too_deep(snippet) from None
    if _depth(node) > MAX_DEPTH:
        raise _too_deep(snippet)
    return node


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    return deepest


def _depth(root: ast.Node) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((child, depth + 1) for child in node.children())
    return deepest


def _too_deep(snippet: Snippet) -> StrategyError:
    return _error(
        snippet,
        0,
        len(snippet.text),
        f"expression nested deeper than {MAX_DEPTH} levels",
        "split it into named indicators or conditions",
    )


def _error(snippet: Snippet, start: int, end: int, message: str, hint: str | None) -> StrategyError:
    span = snippet.span(start, max(end, start + 1))
    return StrategyError([Diagnostic("error", "syntax", message, span, hint)])


def _syntax_error(snippet: Snippet, problem: UnexpectedInput) -> StrategyError:
    text = snippet.text
    pos = problem.pos_in_stream if problem.pos_in_stream is not None else len(text)
    if isinstance(problem, UnexpectedCharacters):
        char = text[pos] if pos < len(text) else ""
        message = f"unexpected character '{char}'"
        hint = _character_hint(char)
        return _error(snippet, pos, pos + 1, message, hint)
    if isinstance(problem, UnexpectedEOF) or (
        isinstance(problem, UnexpectedToken) and problem.token.type == "$END"
    ):
        expected: set[str] = set(getattr(problem, "expected", None) or ())
        return _error(
            snippet,
            max(0, len(text) - 1),
            len(text),
            "the expression ends too early",
            f"expected {_expected(expected)}" if expected else None,
        )
    assert isinstance(problem, UnexpectedToken)
    token = problem.token
    end = token.end_pos if token.end_pos is not None else pos + 1
    missing = _missing_comma(problem, text[:pos])
    if missing is not None:
        return _error(snippet, pos, end, *missing)
    hint = _character_hint(str(token)) if token.type == "EQUAL" else None
    if hint is None and problem.expected:
        hint = f"expected {_expected(problem.expected)}"
    return _error(snippet, pos, end, f"unexpected '{token}'", hint)


_VALUE_STARTS = {"NUMBER", "PERCENT", "DURATION", "NAME", "PARAM", "PAIR", "STRING", "LPAR", "LSQB"}


def _missing_comma(problem: UnexpectedToken, before: str) -> tuple[str, str] | None:
    """A value right after another inside a call's `(` or a list's `[`: a missing comma."""
    expected = set(problem.expected or ())
    if "COMMA" not in expected or problem.token.type not in _VALUE_STARTS:
        return None
    depth = 0
    for at in range(len(before) - 1, -1, -1):
        char = before[at]
        if char in ")]":
            depth += 1
        elif char in "([" and depth:
            depth -= 1
        elif char == "[":
            return "missing `,` between list items", "write e.g. [1, 2, 3]"
        elif char == "(":
            is_call = before[:at].rstrip()[-1:].isalnum() or before[:at].rstrip()[-1:] == "_"
            if is_call:
                return "missing `,` between function arguments", "write e.g. ema(close, 50)"
            return None
    return None


def _character_hint(char: str) -> str | None:
    return {
        "=": "compare with == (equal) or != (not equal)",
        "&": "write `and`",
        "|": "write `or`",
        "!": "write `not`, or != for 'not equal'",
        "#": "inside a multi-line value # is not a comment; put the comment above the key",
        "'": "quote words with matching quotes",
        '"': "quote words with matching quotes",
    }.get(char)


def _expected(names: set[str] | frozenset[str]) -> str:
    words = sorted({_TOKEN_NAMES.get(n, f"`{n.lower()}`") for n in names})
    if len(words) > 6:
        words = [*words[:6], "…"]
    return ", ".join(words)
