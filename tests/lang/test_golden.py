"""Golden files: each bad strategy in golden/ and the exact text `validate` must print.

Regenerate after an intended change with UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kinetic_rules.cli.app import main

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*.yaml"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_error_text_is_exactly_as_recorded(
    case: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(GOLDEN.parent)
    code = main(["validate", f"golden/{case.name}"])
    captured = capsys.readouterr()
    text = captured.err + captured.out
    expected = case.with_suffix(".expected")
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(text)
    assert code == 2
    assert text == expected.read_text()
