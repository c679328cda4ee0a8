"""Fixtures for the data layer: stores and scratch directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinetic_rules.data.store import CandleStore


@pytest.fixture
def store(tmp_path: Path) -> CandleStore:
    return CandleStore(tmp_path / "store")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A scratch directory for files a test builds (copies, corrupted variants)."""
    path = tmp_path / "files"
    path.mkdir()
    return path
