"""The language has one interpreter (compile/interpret.py): every other module that needs
an expression's value asks it, so batch, live and trade-scope evaluation cannot drift apart.

Two things give a second evaluator away, and both are checked in every module:
- reading a function's implementation or stream (`function.impl`, `function.stream`):
  calling a function outside the interpreter skips its argument binder;
- naming an operator node (`ast.Unary`, `ast.Binary`, `ast.Compare`, `ast.IfElse`):
  what an operator gives is the interpreter's to say.
The language's own front end (lang/: parsing, checking, printing) and the functions'
definitions (functions/) are where those are defined, so they are exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_layers import MODULES, ROOT

INTERPRETER = "kinetic_rules.compile.interpret"
EXEMPT_PACKAGES = ("kinetic_rules.lang", "kinetic_rules.functions")
OPERATORS = frozenset({"Unary", "Binary", "Compare", "IfElse"})
FUNCTION_PARTS = frozenset({"impl", "stream"})


def second_evaluator(source: str, filename: str) -> list[str]:
    """Where `source` evaluates the language itself: line and what it reads."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if node.attr in OPERATORS and isinstance(owner, ast.Name) and owner.id == "ast":
            found.append((node.lineno, f"names the operator node ast.{node.attr}"))
        # `self.stream` is an object's own attribute (a progress display's output)
        is_self = isinstance(owner, ast.Name) and owner.id == "self"
        if node.attr in FUNCTION_PARTS and not is_self:
            found.append((node.lineno, f"reads a function's .{node.attr}"))
    return [f"{filename}:{line}: {what}" for line, what in sorted(found)]


def checked_modules() -> dict[str, Path]:
    return {
        name: path
        for name, path in MODULES.items()
        if name != INTERPRETER and not name.startswith(EXEMPT_PACKAGES)
    }


def test_no_module_but_the_interpreter_evaluates_the_language() -> None:
    wrong = []
    for path in checked_modules().values():
        wrong += second_evaluator(path.read_text(), str(path.relative_to(ROOT.parent)))
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_second_evaluator() -> None:
    """The check can fail: an operator matched or a function called outside is caught."""
    planted = (
        "def value(node, a, b):\n"
        "    match node:\n"
        "        case ast.Binary(op='+'):\n"
        "            return a + b\n"
        "    return REGISTRY.get('ema').impl(a, 3)\n"
        "stream = function.stream()\n"
    )
    assert second_evaluator(planted, "x.py") == [
        "x.py:3: names the operator node ast.Binary",
        "x.py:5: reads a function's .impl",
        "x.py:6: reads a function's .stream",
    ]
    assert second_evaluator("self.stream.write('')\n", "ok.py") == []


def test_the_check_covers_every_stage_that_runs_a_plan() -> None:
    """The evaluating stages are all in the checked set, and the interpreter is where both
    operators and function calls live."""
    checked = checked_modules()
    for stage in ("compile", "engine", "backtest", "live", "persist", "cli"):
        assert any(name.startswith(f"kinetic_rules.{stage}.") for name in checked), stage
    for backend in ("evaluate", "incremental", "trade_eval"):
        assert f"kinetic_rules.compile.{backend}" in checked
    interpreter = MODULES[INTERPRETER].read_text()
    assert second_evaluator(interpreter, "interpret.py")  # it does evaluate
