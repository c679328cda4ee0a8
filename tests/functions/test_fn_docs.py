"""docs/functions.md is generated from the registry; fail when it is stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kinetic_rules.functions import REGISTRY
from kinetic_rules.functions.docs import render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "functions.md"
FIX = "run `python -m kinetic_rules.functions.docs > docs/functions.md`"


def test_committed_reference_is_current() -> None:
    assert DOC.exists(), f"docs/functions.md is missing: {FIX}"
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        f"docs/functions.md is stale: {FIX}"
    )


def test_reference_mentions_every_function() -> None:
    text = render_markdown()
    for function in REGISTRY.all():
        assert f"### `{function.signature()}`" in text
        assert function.example in text


def test_module_prints_the_reference() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kinetic_rules.functions.docs"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == render_markdown()
