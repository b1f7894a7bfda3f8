"""The committed JSON Schema of the rule format, generated from the model.

Regenerate after changing `model.py`: `python -m tagsys.rules.schema_file`
(a test fails while the committed file differs from the model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tagsys.rules.model import Rule

SCHEMA_PATH = Path(__file__).with_name("rule-schema.json")


def rule_json_schema() -> dict[str, Any]:
    """The JSON Schema of one rule (`tag_rules.rule_conditions`)."""
    schema = Rule.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tagsys tag rule",
        "description": (
            "One rule of a tag: a group of conditions and nested groups. Structure only: "
            "fields, operator/column fit and value shapes are checked against the lake."
        ),
        **schema,
    }


def render_rule_schema() -> str:
    return json.dumps(rule_json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_rule_schema(path: Path = SCHEMA_PATH) -> Path:
    path.write_text(render_rule_schema(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write_rule_schema()}")
