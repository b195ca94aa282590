"""Export the usage event's JSON Schema for producers: `python -m ops.jsonschema`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.models import UsageEvent

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "usage_event.schema.json"


def usage_event_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a usage event message body."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "usage_event.schema.json",
        **UsageEvent.model_json_schema(),
    }


def render() -> str:
    """The schema file's exact text."""
    return json.dumps(usage_event_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_FILE
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")  # noqa: T201 - a command-line tool reports what it wrote
