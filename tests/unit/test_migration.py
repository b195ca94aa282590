"""Migration: loading, validation report, plan, idempotence, with an in-memory target."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ops.migration import (
    MigrationInputError,
    Write,
    load_export,
    migrate,
    tier_flags,
)
from shared.models import BundleTier, Customer

FIXTURES = Path(__file__).parents[1] / "fixtures"
EXPORT = FIXTURES / "migration"
BROKEN = {
    "customers/mig_cust_007": "bundle_tier",
    "customers/mig_cust_031": "email",
    "scenes/mig_scene_0010": "min_quality_score",
    "scenes/mig_scene_0055": "customer_id",
    "scenes/mig_scene_0099": "episodes_per_variation",
}


class MemoryTarget:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}
        self.batches: list[int] = []

    def read(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any] | None]:
        return {k: self.docs.get(k) for k in keys}

    def existing_customers(self, ids: set[str]) -> set[str]:
        return {i for i in ids if ("customers", i) in self.docs}

    def write(self, writes: Sequence[Write], batch_size: int, progress: Any = None) -> int:
        for start in range(0, len(writes), batch_size):
            chunk = writes[start : start + batch_size]
            self.batches.append(len(chunk))
            for w in chunk:
                key = (w.collection, w.doc_id)
                self.docs[key] = dict(w.data) if w.create else {**self.docs[key], **w.data}
        return len(writes)


def test_fixture_has_the_promised_sizes() -> None:
    records, structural = load_export([EXPORT])
    assert not structural
    count = {c: sum(r.collection == c for r in records) for c in ("customers", "scenes")}
    assert count == {"customers": 50, "scenes": 120}


def test_refuses_and_names_every_broken_record() -> None:
    target = MemoryTarget()
    result = migrate([EXPORT], target)
    assert result.refused
    assert result.written == 0
    assert not target.docs
    named = {f"{b.collection}/{b.doc_id}": b.field for b in result.invalid}
    assert named == BROKEN
    assert all(b.source.endswith(".json") for b in result.invalid)
    bad_tier = next(b for b in result.invalid if b.doc_id == "mig_cust_007")
    assert bad_tier.value == "platinum"


def test_skip_invalid_writes_the_rest_in_batches_and_second_run_writes_nothing() -> None:
    target = MemoryTarget()
    result = migrate([EXPORT], target, skip_invalid=True, batch_size=100)
    assert not result.refused
    assert result.invalid_records == 5
    assert result.created["customers"] == 48
    assert result.created["scenes"] == 117
    # 48 customers: 2 have flags in the export, 46 get flags from their tier; plus _global.
    assert result.flags_initialised == 46
    assert result.created["feature_flags"] == 49
    assert result.written == 48 + 117 + 49 == len(target.docs)
    assert max(target.batches) == 100
    flags = target.docs[("feature_flags", "mig_cust_004")]
    tier = Customer.model_validate(
        {
            "schema_version": 1,
            "bundle_tier": target.docs[("customers", "mig_cust_004")]["bundle_tier"],
        }
    )
    assert flags == tier_flags(tier)
    assert ("customers", "mig_cust_007") not in target.docs
    again = migrate([EXPORT], target, skip_invalid=True)
    assert again.written == 0
    assert sum(again.created.values()) == 0
    assert again.unchanged["customers"] == 48


def test_rerun_updates_only_changed_fields_and_keeps_live_counters() -> None:
    target = MemoryTarget()
    migrate([EXPORT], target, skip_invalid=True)
    key = ("customers", "mig_cust_001")
    target.docs[key]["scenes_generated_this_month"] = 99  # live counter moved on
    target.docs[key]["organization_name"] = "Renamed in Firestore"
    result = migrate([EXPORT], target, skip_invalid=True)
    assert result.written == 1
    assert result.updated["customers"] == 1
    assert target.docs[key]["organization_name"] == "Migrated Lab 1"
    assert target.docs[key]["scenes_generated_this_month"] == 99


def test_dry_run_writes_nothing_but_counts() -> None:
    target = MemoryTarget()
    result = migrate([EXPORT], target, skip_invalid=True, dry_run=True)
    assert result.dry_run
    assert result.written == 214
    assert not target.docs


def test_directory_of_customer_files_with_embedded_scenes() -> None:
    records, _ = load_export([FIXTURES / "migration_dir"])
    ids = sorted(f"{r.collection}/{r.doc_id}" for r in records)
    assert ids == [
        "customers/acme",
        "customers/beta_lab",
        "feature_flags/acme",
        "scenes/acme_scene_1",
        "scenes/beta_scene_1",
        "scenes/beta_scene_2",
    ]
    target = MemoryTarget()
    result = migrate([FIXTURES / "migration_dir"], target)
    assert result.refused
    assert [(b.doc_id, b.field, b.value) for b in result.invalid] == [
        ("beta_scene_2", "max_variations", "many")
    ]
    result = migrate([FIXTURES / "migration_dir"], target, skip_invalid=True)
    assert target.docs[("scenes", "acme_scene_1")]["customer_id"] == "acme"
    assert target.docs[("feature_flags", "acme")] == {"schema_version": 1, "tactile": False}
    assert target.docs[("feature_flags", "beta_lab")]["audio_narration"] is False


def test_scene_of_a_customer_already_in_firestore_is_valid(tmp_path: Path) -> None:
    (tmp_path / "scenes.json").write_text(
        '{"s1": {"schema_version": 1, "customer_id": "old"}, '
        '"s2": {"schema_version": 1, "customer_id": "gone"}}'
    )
    target = MemoryTarget()
    target.docs[("customers", "old")] = {"schema_version": 1, "bundle_tier": "pro"}
    result = migrate([tmp_path / "scenes.json"], target)
    assert [(b.doc_id, b.field) for b in result.invalid] == [("s2", "customer_id")]


def test_duplicate_ids_and_bad_ids_are_bad_records(tmp_path: Path) -> None:
    (tmp_path / "customers.json").write_text(
        '[{"id": "a", "schema_version": 1, "bundle_tier": "pro"},'
        ' {"id": "a", "schema_version": 1, "bundle_tier": "pro"},'
        ' {"id": "x/y", "schema_version": 1, "bundle_tier": "pro"},'
        ' {"schema_version": 1, "bundle_tier": "pro"}]'
    )
    result = migrate([tmp_path / "customers.json"], MemoryTarget())
    fields = sorted((b.doc_id, b.field) for b in result.invalid)
    assert fields == [("#3", "id"), ("a", "(id)"), ("x/y", "(id)")]


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("customers.json", "{oops", "not valid JSON"),
        ("usage.json", "{}", "cannot tell the collection"),
        ("customers.json", "3", "expected an object"),
    ],
)
def test_unreadable_exports_raise_one_clear_error(
    tmp_path: Path, name: str, content: str, needle: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(MigrationInputError, match=needle):
        migrate([tmp_path / name], MemoryTarget())


def test_tier_flags_follow_the_tier_table() -> None:
    flags = tier_flags(Customer(schema_version=1, bundle_tier=BundleTier.ENTERPRISE))
    assert flags["sim2real"] is True
    assert flags["streaming_export"] is False
    assert flags["schema_version"] == 1


def test_a_duplicated_id_is_not_written_even_with_skip_invalid(tmp_path: Path) -> None:
    """Two records claim customers/a: neither is trusted (which one is right is unknown), and
    the scenes that point at it are invalid like those of any invalid customer."""
    (tmp_path / "customers.json").write_text(
        '[{"id": "a", "schema_version": 1, "bundle_tier": "pro"},'
        ' {"id": "a", "schema_version": 1, "bundle_tier": "enterprise"},'
        ' {"id": "b", "schema_version": 1, "bundle_tier": "pro"}]'
    )
    (tmp_path / "scenes.json").write_text('{"s1": {"schema_version": 1, "customer_id": "a"}}')
    target = MemoryTarget()
    result = migrate([tmp_path], target, skip_invalid=True)
    assert ("customers", "a") not in target.docs
    assert ("scenes", "s1") not in target.docs
    assert target.docs[("customers", "b")]["bundle_tier"] == "pro"
    assert result.invalid_records == 2  # customers/a, scenes/s1


def test_entries_that_are_not_documents_count_among_the_records(tmp_path: Path) -> None:
    (tmp_path / "customers.json").write_text(
        '[1, {"schema_version": 1, "bundle_tier": "pro"}, {"id": "ok", "schema_version": 1,'
        ' "bundle_tier": "pro"}]'
    )
    result = migrate([tmp_path / "customers.json"], MemoryTarget())
    assert result.refused
    assert (result.invalid_records, result.records) == (2, 3)  # not "2 of 1"


def test_a_missing_field_is_reported_as_missing_not_as_the_whole_document(tmp_path: Path) -> None:
    long_name = "Org " + "x" * 500
    (tmp_path / "customers.json").write_text(
        '{"c1": {"schema_version": 1, "organization_name": "' + long_name + '"}}'
    )
    result = migrate([tmp_path / "customers.json"], MemoryTarget())
    [bad] = result.invalid
    assert (bad.field, bad.value) == ("bundle_tier", None)
    assert "required" in bad.expected
