"""The committed JSON Schema is generated from the models and accepts the shipped strategies."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from kinetic_rules.spec.schema import render
from tests.conftest import STRATEGIES

SCHEMA = Path(__file__).parents[2] / "schemas" / "strategy.schema.json"


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA.read_text() == render(), (
        "schemas/strategy.schema.json is stale: run "
        "`python -m kinetic_rules.spec.schema > schemas/strategy.schema.json`"
    )


def test_shipped_strategies_validate_against_the_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    for path in STRATEGIES.glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_every_field_an_editor_shows_has_a_description() -> None:
    schema = json.loads(SCHEMA.read_text())
    for name, definition in schema["$defs"].items():
        for field, spec in definition.get("properties", {}).items():
            described = "description" in spec or "$ref" in spec or "allOf" in spec
            assert described or "anyOf" in spec, f"{name}.{field} has no description"
