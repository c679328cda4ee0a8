"""The parser's stored tables: made from the grammar as it is now, and a parser read from
them reads every text as one built from the grammar does (trees, positions, errors)."""

from __future__ import annotations

import json
from pathlib import Path

import lark
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark import Lark, UnexpectedInput

from kinetic_rules.lang import grammar_tables
from kinetic_rules.lang.parser import _lark
from kinetic_rules.lang.printer import to_text
from tests.lang.test_parser import trees

STORED = Path(grammar_tables.__file__).parent / grammar_tables.TABLES_FILE
REGENERATE = "python -m kinetic_rules.lang.grammar_tables"


@pytest.fixture(scope="module")
def built() -> Lark:
    return grammar_tables.build(grammar_tables.grammar_text())


@pytest.fixture(scope="module")
def loaded() -> Lark:
    grammar = grammar_tables.grammar_text()
    stored = json.loads(STORED.read_text(encoding="utf-8"))
    if stored["lark"] != lark.__version__:  # the parser is built from the grammar then
        pytest.skip(f"tables written by Lark {stored['lark']}, {lark.__version__} installed")
    parser = grammar_tables.load(grammar)
    assert parser is not None
    return parser


def test_the_tables_are_the_grammars() -> None:
    stored = json.loads(STORED.read_text(encoding="utf-8"))
    digest = grammar_tables.grammar_digest(grammar_tables.grammar_text())
    assert stored["grammar_sha256"] == digest, f"grammar.lark changed: run `{REGENERATE}`"


def test_the_parser_in_use_comes_from_the_tables(loaded: Lark) -> None:
    assert grammar_tables.load(grammar_tables.grammar_text()) is not None
    assert _lark().parser.parser.parser.parse_table.states == (
        loaded.parser.parser.parser.parse_table.states
    )


def test_other_grammar_or_lark_builds_from_the_grammar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert grammar_tables.load(grammar_tables.grammar_text() + "\n// changed\n") is None
    monkeypatch.setattr(lark, "__version__", "0.0.0")
    assert grammar_tables.load(grammar_tables.grammar_text()) is None


def test_tables_survive_the_json_spelling(built: Lark) -> None:
    grammar = grammar_tables.grammar_text()
    document = json.loads(grammar_tables.tables(built, grammar), object_hook=grammar_tables.decode)
    data, memo = built.memo_serialize([lark.lexer.TerminalDef, lark.grammar.Rule])
    assert document["data"] == data
    assert document["memo"] == memo


def _outcome(parser: Lark, text: str) -> object:
    try:
        tree = parser.parse(text)
    except UnexpectedInput as error:
        expected = sorted(getattr(error, "expected", None) or getattr(error, "allowed", ()))
        return (type(error).__name__, error.line, error.column, expected)
    positions = [
        (node.data, node.meta.line, node.meta.column, node.meta.end_column)
        for node in tree.iter_subtrees()
        if not node.meta.empty
    ]
    return tree, positions


@settings(max_examples=200, deadline=None)
@given(trees)
def test_loaded_reads_like_built_on_valid_text(loaded: Lark, built: Lark, tree: object) -> None:
    text = to_text(tree)  # type: ignore[arg-type]
    assert _outcome(loaded, text) == _outcome(built, text)


@settings(max_examples=200, deadline=None)
@given(trees, st.integers(min_value=0, max_value=200), st.sampled_from(["(", ")", ",", "@", "]"]))
def test_loaded_reads_like_built_on_broken_text(
    loaded: Lark, built: Lark, tree: object, at: int, junk: str
) -> None:
    text = to_text(tree)  # type: ignore[arg-type]
    broken = text[: at % (len(text) + 1)] + junk + text[at % (len(text) + 1) :]
    assert _outcome(loaded, broken) == _outcome(built, broken)
