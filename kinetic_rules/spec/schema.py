"""JSON Schema of strategy files, generated from the spec models.

`python -m kinetic_rules.spec.schema > schemas/strategy.schema.json` writes the
committed copy; a test fails when that copy is stale. Editors that understand a
`# yaml-language-server: $schema=...` line then offer completion and hover docs.
"""

from __future__ import annotations

import json
from typing import Any

from kinetic_rules.spec.models import Strategy

SCHEMA_ID = "https://kinetic-rules.dev/schemas/strategy.schema.json"


def strategy_schema() -> dict[str, Any]:
    schema = Strategy.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "kinetic-rules strategy",
        **schema,
    }


def render() -> str:
    return json.dumps(strategy_schema(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
