"""The JSON schema of plan.json (``schema/plan.schema.json``) and its validation."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SCHEMA_PATH = Path(__file__).with_name("schema") / "plan.schema.json"


@cache
def plan_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def validate_plan(plan: dict) -> None:
    """Raise ``jsonschema.ValidationError`` when ``plan`` does not follow the schema."""
    import jsonschema

    jsonschema.validate(plan, plan_schema())
