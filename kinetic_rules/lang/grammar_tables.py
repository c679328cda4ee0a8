"""The parser's LALR tables, kept beside the grammar so a process loads them instead of
building them: Lark takes about 40 ms of CPU to analyse grammar.lark, a twentieth of
that to read its tables back, and every command that reads a strategy pays it.

The tables are Lark's own serialization (`Lark.memo_serialize`), written as JSON with
tuples and non-text keys spelled out, so loading them runs no code (no pickle). They
name the grammar they were built from (its SHA-256) and the Lark version that built
them; on any difference the parser is built from the grammar as before. After changing
grammar.lark, write them again (tests/lang/test_grammar_tables.py fails until then):

    python -m kinetic_rules.lang.grammar_tables
"""

from __future__ import annotations

import hashlib
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import lark
from lark import Lark
from lark.grammar import Rule
from lark.lexer import TerminalDef

TABLES_FILE = "grammar_tables.json"
_TUPLE, _ITEMS = "__tuple__", "__items__"


def grammar_text() -> str:
    return files("kinetic_rules.lang").joinpath("grammar.lark").read_text(encoding="utf-8")


def grammar_digest(grammar: str) -> str:
    return hashlib.sha256(grammar.encode("utf-8")).hexdigest()


def build(grammar: str) -> Lark:
    """The parser, from the grammar itself (the slow way)."""
    return Lark(
        grammar,
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=False,
    )


def load(grammar: str) -> Lark | None:
    """The parser from the stored tables, or None when they are missing or were built
    from another grammar or by another version of Lark."""
    path = files("kinetic_rules.lang").joinpath(TABLES_FILE)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"), object_hook=decode)
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("grammar_sha256") != grammar_digest(grammar):
        return None
    if stored.get("lark") != lark.__version__:
        return None
    return Lark.load({"data": stored["data"], "memo": stored["memo"]})


def tables(parser: Lark, grammar: str) -> str:
    """The JSON text of `parser`'s tables, naming `grammar` and this Lark version."""
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    document = {
        "grammar_sha256": grammar_digest(grammar),
        "lark": lark.__version__,
        "data": data,
        "memo": memo,
    }
    return json.dumps(_encode(document), separators=(",", ":"), sort_keys=True) + "\n"


def write(folder: Path | None = None) -> Path:
    """Build the parser from the grammar and store its tables (in the package by default)."""
    grammar = grammar_text()
    target = (folder or Path(__file__).parent) / TABLES_FILE
    target.write_text(tables(build(grammar), grammar), encoding="utf-8")
    return target


def _encode(value: Any) -> Any:
    """JSON keeps text keys and lists only: tuples and other keys are spelled out."""
    if isinstance(value, dict):
        if all(isinstance(key, str) and key not in (_TUPLE, _ITEMS) for key in value):
            return {key: _encode(item) for key, item in value.items()}
        return {_ITEMS: [[_encode(key), _encode(item)] for key, item in value.items()]}
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(item) for item in value]}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in the grammar tables")


def decode(value: dict[str, Any]) -> Any:
    """`json.loads`' object hook: tuples and non-text keys back as `_encode` spelled them."""
    if len(value) == 1 and _TUPLE in value:
        return tuple(value[_TUPLE])
    if len(value) == 1 and _ITEMS in value:
        return {key: item for key, item in value[_ITEMS]}
    return value


if __name__ == "__main__":
    print(f"wrote {write()}")
