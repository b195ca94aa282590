"""docs/data-model.md is generated from the models: current, complete, and said in words."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field

from ops import datamodel
from shared.models import Customer, FeatureFlags, Scene, UsageEvent, UsageRecord
from shared.types import DocumentId, UtcDatetime


def test_docs_data_model_is_current() -> None:
    current = datamodel.TARGET.read_text("utf-8")
    assert current == datamodel.render(), "docs/data-model.md is stale: python -m ops.datamodel"


@pytest.mark.parametrize("model", [Customer, Scene, FeatureFlags, UsageRecord, UsageEvent])
def test_every_field_is_documented_with_its_docstring(model: type) -> None:
    rows = datamodel.field_rows(model)
    assert "\n".join(rows) in datamodel.render()
    for name, info in model.model_fields.items():
        row = next((r for r in rows if r.startswith(f"| `{info.alias or name}` |")), None)
        assert row is not None, name
        assert info.description, f"{model.__name__}.{name} has no docstring"
        assert " ".join(info.description.split()).replace("|", "\\|") in row
        assert ("| yes |" in row) == info.is_required()


def test_types_are_said_in_words() -> None:
    assert datamodel.type_text(DocumentId).startswith("document id")
    assert datamodel.type_text(UtcDatetime | None).startswith("timestamp (RFC 3339")
    assert datamodel.type_text(Annotated[int, Field(ge=1, le=100)]) == "integer >= 1, <= 100"
    assert datamodel.type_text(Annotated[str, Field(max_length=8)]) == "text, length <= 8"
    assert datamodel.type_text(dict[str, bool]) == "map of text to boolean"


def test_check_mode_says_when_the_file_is_stale(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "data-model.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(datamodel, "TARGET", stale)
    assert datamodel.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert datamodel.main([]) == 0
    assert datamodel.main(["--check"]) == 0
