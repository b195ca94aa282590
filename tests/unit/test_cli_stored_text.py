"""Stored text reaches the terminal as it is: ids and reasons are never read as rich markup, and
`--json` is always valid JSON."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime

from functions.usage.service import UsageService
from ops.cli import main
from tests.console_fake import FakeFirestore
from tests.usage_support import NOW, FakeRepository, event_body, message


def _rejections(*actions: str) -> FakeFirestore:
    repo = FakeRepository()
    repo.put_customer("lab_001", bundle_tier="pro")
    service = UsageService(repo)
    for n, action in enumerate(actions):
        service.handle(message(event_body(action=action, event_id=f"e-{n}"), f"m-{n}"), NOW)
    db = FakeFirestore()
    for n, doc in enumerate(repo.rejections.values()):
        db.put(
            "usage_rejections", f"r{n}", {**doc, "rejected_at": datetime(2026, 12, 1, tzinfo=UTC)}
        )
    return db


def test_a_reason_or_value_with_brackets_is_printed_as_stored() -> None:
    # "[/generated]" made rich raise a MarkupError; "[a-z0-9_.-]" vanished as a style tag.
    db = _rejections("scene[/generated]", "Scene Generated")
    out = io.StringIO()
    assert main(["inspect", "rejections"], out=out, client_factory=lambda: db) == 0
    text = out.getvalue()
    assert "scene[/generated]" in text
    assert "[a-z0-9_.-]" in text


def test_json_output_is_valid_json_even_for_stored_non_finite_numbers() -> None:
    db = FakeFirestore()
    db.put("customers", "c1", {"schema_version": 1, "bundle_tier": "pro", "x": math.inf})
    out = io.StringIO()
    assert main(["inspect", "customers", "--json"], out=out, client_factory=lambda: db) == 0
    json.loads(out.getvalue(), parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
