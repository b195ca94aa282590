"""Security rules matrix: `firestore.rules` loaded into the real Firestore emulator.

Every case states who does what to which document and whether it must be allowed. Requests go
over the REST API with unsigned user tokens (the Python client bypasses rules); seed data goes
through the Python client. A denied write must leave the document untouched; an allowed one must
really change it. Cases named `hole_*` are regressions of the holes in the specification's example rules:
each one is also run against those rules, where it must come out the other way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from tests.integration.firestore_rest import RestClient, user_token

pytestmark = pytest.mark.integration

PROJECT = "demo-rules-matrix"
"""A project of its own: rules and seed data never meet the other integration tests."""
RULES = Path(__file__).resolve().parents[2] / "firestore.rules"

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
LATER = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)

SCHEMA_MD_PROJECT = "demo-rules-schema-md"
SCHEMA_MD_RULES = """
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /customers/{customerId} {
      allow read, write: if request.auth.uid == customerId || isAdmin();
      allow list: if isAdmin();
    }
    match /scenes/{sceneId} {
      allow read: if request.auth.uid == resource.data.customer_id || isAdmin();
      allow write: if request.auth.uid == resource.data.customer_id || isAdmin();
    }
    match /feature_flags/{document=**} {
      allow read: if isAdmin() || request.auth.uid == document;
      allow write: if isAdmin();
    }
    match /usage_tracking/{document=**} {
      allow read: if isAdmin();
      allow write: if isAdmin() || request.auth.uid == resource.data.customer_id;
    }
    function isAdmin() {
      return request.auth.token.admin == true;
    }
  }
}
"""
"""The specification's example rules ("Field-Level Security"), verbatim: the holes to close."""

# ---- principals -------------------------------------------------------------------------

PRINCIPALS = ("anonymous", "owner", "other", "admin")
"""owner = customer `cust_a` (owns everything *_a); other = customer `cust_b`; admin = claim."""

TOKENS: dict[str, dict[str, Any] | None] = {
    "anonymous": None,
    "owner": {"uid": "cust_a"},
    "other": {"uid": "cust_b"},
    "admin": {"uid": "ops_1", "admin": True},
    # Extra principals used only by named cases.
    "newcomer": {"uid": "cust_new"},
    "admin_claim_string": {"uid": "ops_2", "admin": "true"},
    "admin_claim_false": {"uid": "cust_a", "admin": False},
}

# ---- seed data (written with the Python client, which bypasses rules) --------------------

SEED: dict[str, dict[str, Any]] = {
    "customers/cust_a": {
        "schema_version": 1,
        "bundle_tier": "pro",
        "organization_name": "AI Research Lab",
        "email": "contact@ailab.edu",
        "monthly_scene_quota": 100,
        "scenes_generated_this_month": 45,
        "total_scenes_generated": 300,
        "total_episodes_generated": 9000,
        "support_tier": "priority",
        "contract_start": T0,
        "contract_end": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "audio_narration_enabled": True,
        "subtitle_generation_enabled": True,
        "preferred_tts_voice": "en-US-Neural2-D",
        "preferred_language": "en-US",
        "feature_overrides": {"tactile_sensors": True},
        "created_at": T0,
        "updated_at": T0,
        "quota_reset_at": T0,
    },
    "customers/cust_b": {"schema_version": 1, "bundle_tier": "standard", "email": "b@b.example"},
    "scenes/scene_a": {
        "schema_version": 1,
        "customer_id": "cust_a",
        "robot_type": "franka",
        "data_pack_tier": "plus",
        "episodes_per_variation": 50,
        "min_quality_score": 0.85,
        "vla_models": ["openvla"],
        "custom_settings": {"lighting_variation": "high"},
        "created_at": T0,
        "updated_at": T0,
    },
    "scenes/scene_b": {"schema_version": 1, "customer_id": "cust_b", "robot_type": "ur10"},
    "feature_flags/cust_a": {"schema_version": 1, "tactile": True},
    "feature_flags/cust_b": {"schema_version": 1, "sim2real": False},
    "feature_flags/_global": {"schema_version": 1, "tactile": False},
    "usage_tracking/rec_a": {
        "schema_version": 1,
        "customer_id": "cust_a",
        "scene_id": "scene_a",
        "action": "episodes_generated",
        "timestamp": T0,
        "billable": True,
        "estimated_cost": 15.5,
    },
    "usage_rejections/rej_a": {"customer_id": "cust_a", "reason": "unknown customer", "at": T0},
    "quota_resets/2025-01": {"month": "2025-01", "customers_reset": 2, "at": T0},
    "quota_alerts/cust_a_2025-01_80": {"customer_id": "cust_a", "threshold": 80, "at": T0},
    "audit_log/entry_1": {"note": "a collection no rule names"},
    "customers/cust_a/secrets/s1": {"note": "a subcollection no rule names"},
}

# ---- the matrix --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """One request by one principal, and whether the rules must allow it."""

    name: str
    who: str
    op: str
    """get | list | query | create | update | delete"""
    path: str
    allow: bool
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    remove: tuple[str, ...] = ()
    where: tuple[str, Any] | None = None


def matrix(
    label: str,
    op: str,
    path: str,
    allowed: tuple[str, ...],
    data: dict[str, Any] | None = None,
    **extra: Any,
) -> list[Case]:
    """One case per principal; `allowed` lists who must succeed, every other one is denied.

    `{who}` in `path` is replaced by the principal, so each create targets a fresh document.
    """
    return [
        Case(
            name=f"{label}-{who}",
            who=who,
            op=op,
            path=path.format(who=who),
            allow=who in allowed,
            data=data or {},
            **extra,
        )
        for who in PRINCIPALS
    ]


OWNER_ADMIN = ("owner", "admin")
ADMIN = ("admin",)
SIGNED_IN = ("owner", "other", "admin")
NOBODY: tuple[str, ...] = ()

CUSTOMER_PROFILE = {
    "organization_name": "Renamed Lab",
    "email": "new@ailab.edu",
    "preferred_tts_voice": "en-GB-Neural2-A",
    "preferred_language": "en-GB",
    "audio_narration_enabled": False,
    "subtitle_generation_enabled": False,
}
CUSTOMER_GROUPS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    # group -> (fields to write, who may write them)
    "profile": (CUSTOMER_PROFILE, OWNER_ADMIN),
    "profile_email_only": ({"email": "only@ailab.edu"}, OWNER_ADMIN),
    "tier": ({"bundle_tier": "foundation"}, ADMIN),
    "quota": ({"monthly_scene_quota": -1}, ADMIN),
    "counters": (
        {
            "scenes_generated_this_month": 0,
            "total_scenes_generated": 0,
            "total_episodes_generated": 0,
        },
        ADMIN,
    ),
    "quota_reset_at": ({"quota_reset_at": LATER}, ADMIN),
    "contract": ({"contract_start": LATER, "contract_end": LATER}, ADMIN),
    "support_tier": ({"support_tier": "dedicated"}, ADMIN),
    "overrides": ({"feature_overrides": {"sim2real": True, "tactile_sensors": True}}, ADMIN),
    "timestamps": ({"created_at": LATER, "updated_at": LATER}, ADMIN),
    "schema_version": ({"schema_version": 2}, ADMIN),
    "profile_and_tier": ({"email": "x@ailab.edu", "bundle_tier": "enterprise"}, ADMIN),
    "unknown_field": ({"is_admin": True}, ADMIN),
}

NEW_SCENE = {"schema_version": 1, "customer_id": "cust_a", "robot_type": "franka"}
SCENE_GROUPS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "config": (
        {"robot_type": "ur10", "episodes_per_variation": 20, "min_quality_score": 0.9},
        OWNER_ADMIN,
    ),
    "features": (
        {"vla_models": ["openvla", "pi0"], "sim2real_enabled": True, "tactile_enabled": True},
        OWNER_ADMIN,
    ),
    "custom_settings": ({"custom_settings": {"physics_profile": "soft"}}, OWNER_ADMIN),
    "customer_id": ({"customer_id": "cust_b"}, ADMIN),
    "bundle_tier": ({"bundle_tier": "foundation"}, ADMIN),
    "timestamps": ({"created_at": LATER, "updated_at": LATER}, ADMIN),
}

FLAGS = {"schema_version": 1, "tactile": True, "sim2real": True}
RECORD = {
    "schema_version": 1,
    "customer_id": "cust_a",
    "scene_id": "scene_a",
    "action": "scene_generated",
    "timestamp": LATER,
    "billable": False,
    "estimated_cost": 0.0,
}


def admin_only_collection(collection: str, doc: str) -> list[Case]:
    """Billing records and operational logs: admin reads, nobody writes (admin included)."""
    return [
        *matrix(f"{collection}-get", "get", f"{collection}/{doc}", ADMIN),
        *matrix(f"{collection}-list", "list", collection, ADMIN),
        *matrix(f"{collection}-create", "create", f"{collection}/new_{{who}}", NOBODY, RECORD),
        *matrix(
            f"{collection}-update", "update", f"{collection}/{doc}", NOBODY, {"customer_id": "x"}
        ),
        *matrix(f"{collection}-delete", "delete", f"{collection}/{doc}", NOBODY),
    ]


CASES: list[Case] = [
    # customers
    *matrix("customers-get-own", "get", "customers/cust_a", OWNER_ADMIN),
    *matrix("customers-get-other", "get", "customers/cust_b", ("other", "admin")),
    *matrix("customers-list", "list", "customers", ADMIN),
    *matrix("customers-create", "create", "customers/new_{who}", ADMIN, {"bundle_tier": "pro"}),
    *(
        case
        for group, (data, allowed) in CUSTOMER_GROUPS.items()
        for case in matrix(f"customers-update-{group}", "update", "customers/cust_a", allowed, data)
    ),
    *matrix("customers-delete", "delete", "customers/cust_a", ADMIN),
    # scenes
    *matrix("scenes-get", "get", "scenes/scene_a", OWNER_ADMIN),
    *matrix("scenes-query-own", "query", "scenes", OWNER_ADMIN, where=("customer_id", "cust_a")),
    *matrix("scenes-list-unfiltered", "list", "scenes", ADMIN),
    *matrix("scenes-create-for-cust_a", "create", "scenes/new_{who}", OWNER_ADMIN, NEW_SCENE),
    *(
        case
        for group, (fields, allowed) in SCENE_GROUPS.items()
        for case in matrix(f"scenes-update-{group}", "update", "scenes/scene_a", allowed, fields)
    ),
    *matrix("scenes-delete", "delete", "scenes/scene_a", OWNER_ADMIN),
    # feature_flags
    *matrix("flags-get-own", "get", "feature_flags/cust_a", OWNER_ADMIN),
    *matrix("flags-get-global", "get", "feature_flags/_global", SIGNED_IN),
    *matrix("flags-list", "list", "feature_flags", ADMIN),
    *matrix("flags-create", "create", "feature_flags/flags_{who}", ADMIN, FLAGS),
    *matrix("flags-update-own", "update", "feature_flags/cust_a", ADMIN, {"sim2real": True}),
    *matrix("flags-update-global", "update", "feature_flags/_global", ADMIN, {"tactile": True}),
    *matrix("flags-delete-own", "delete", "feature_flags/cust_a", ADMIN),
    *matrix("flags-delete-global", "delete", "feature_flags/_global", ADMIN),
    # billing records and operational logs
    *admin_only_collection("usage_tracking", "rec_a"),
    *admin_only_collection("usage_rejections", "rej_a"),
    *admin_only_collection("quota_resets", "2025-01"),
    *admin_only_collection("quota_alerts", "cust_a_2025-01_80"),
    # everything else
    *matrix("unnamed-collection-get", "get", "audit_log/entry_1", NOBODY),
    *matrix("unnamed-collection-create", "create", "audit_log/new_{who}", NOBODY, {"n": 1}),
    *matrix("subcollection-get", "get", "customers/cust_a/secrets/s1", NOBODY),
    *matrix("subcollection-list", "list", "customers/cust_a/secrets", NOBODY),
    *matrix("subcollection-create", "create", "customers/cust_a/secrets/new_{who}", NOBODY,
            {"n": 1}),
    *matrix("scene-subcollection-create", "create", "scenes/scene_a/notes/new_{who}", NOBODY,
            {"n": 1}),
    # ---- named cases: the holes of the specification's example rules and other edges ----
    Case("hole_customer_raises_own_tier", "owner", "update", "customers/cust_a", False,
         {"bundle_tier": "foundation"}),
    Case("hole_customer_raises_own_quota", "owner", "update", "customers/cust_a", False,
         {"monthly_scene_quota": 100000}),
    Case("hole_customer_resets_own_counter", "owner", "update", "customers/cust_a", False,
         {"scenes_generated_this_month": 0}),
    Case("hole_customer_extends_own_contract", "owner", "update", "customers/cust_a", False,
         {"contract_end": LATER}),
    Case("hole_customer_grants_own_override", "owner", "update", "customers/cust_a", False,
         {"feature_overrides": {"sim2real": True}}),
    Case("hole_customer_upgrades_support", "owner", "update", "customers/cust_a", False,
         {"support_tier": "dedicated"}),
    Case("hole_customer_deletes_own_doc", "owner", "delete", "customers/cust_a", False),
    Case("hole_customer_creates_own_doc", "newcomer", "create", "customers/cust_new", False,
         {"schema_version": 1, "bundle_tier": "foundation", "monthly_scene_quota": -1}),
    Case("customer_removes_own_tier", "owner", "update", "customers/cust_a", False,
         remove=("bundle_tier",)),
    Case("customer_clears_own_email", "owner", "update", "customers/cust_a", True,
         remove=("email",)),
    Case("customer_removes_own_overrides", "owner", "update", "customers/cust_a", False,
         remove=("feature_overrides",)),
    Case("customer_removes_own_created_at", "owner", "update", "customers/cust_a", False,
         remove=("created_at",)),
    Case("customer_sets_one_override_key", "owner", "update", "customers/cust_a", False,
         {"feature_overrides.sim2real": True}),
    Case("admin_sets_one_override_key", "admin", "update", "customers/cust_a", True,
         {"feature_overrides.sim2real": True}),
    Case("customer_email_must_be_string", "owner", "update", "customers/cust_a", False,
         {"email": 42}),
    Case("customer_narration_must_be_bool", "owner", "update", "customers/cust_a", False,
         {"audio_narration_enabled": "yes"}),
    Case("hole_scene_create_checked_on_request_resource", "owner", "create",
         "scenes/hole_create", True, NEW_SCENE),
    Case("scene_create_for_another_customer", "other", "create", "scenes/hole_other",
         False, NEW_SCENE),
    Case("scene_create_with_bundle_tier", "owner", "create", "scenes/tiered", False,
         {**NEW_SCENE, "bundle_tier": "foundation"}),
    Case("scene_create_without_customer_id", "owner", "create", "scenes/orphan", False,
         {"schema_version": 1, "robot_type": "franka"}),
    Case("hole_scene_owner_gives_scene_away", "owner", "update", "scenes/scene_a", False,
         {"customer_id": "cust_b"}),
    Case("scene_other_takes_scene_over", "other", "update", "scenes/scene_a", False,
         {"customer_id": "cust_b"}),
    Case("scene_owner_removes_customer_id", "owner", "update", "scenes/scene_a", False,
         remove=("customer_id",)),
    Case("scene_query_for_another_customer", "owner", "query", "scenes", False,
         where=("customer_id", "cust_b")),
    Case("scene_query_by_other_for_itself", "other", "query", "scenes", True,
         where=("customer_id", "cust_b")),
    Case("hole_flags_owner_reads_own_doc", "owner", "get", "feature_flags/cust_a", True),
    Case("flags_other_reads_foreign_doc", "other", "get", "feature_flags/cust_a", False),
    Case("flags_global_readable_by_newcomer", "newcomer", "get", "feature_flags/_global", True),
    Case("flags_global_not_writable_by_customer", "owner", "update", "feature_flags/_global",
         False, {"tactile": True}),
    Case("flags_customer_creates_own_doc", "newcomer", "create", "feature_flags/cust_new",
         False, FLAGS),
    Case("usage_customer_creates_own_record", "owner", "create", "usage_tracking/forged",
         False, RECORD),
    Case("hole_usage_customer_edits_own_record", "owner", "update", "usage_tracking/rec_a",
         False, {"estimated_cost": 0.0}),
    Case("hole_usage_customer_deletes_own_record", "owner", "delete", "usage_tracking/rec_a",
         False),
    Case("usage_customer_reads_own_record", "owner", "get", "usage_tracking/rec_a", False),
    Case("admin_claim_must_be_boolean_true", "admin_claim_string", "list", "customers", False),
    Case("admin_claim_false_is_not_admin", "admin_claim_false", "update", "customers/cust_a",
         False, {"bundle_tier": "foundation"}),
]  # fmt: skip


def test_matrix_is_complete() -> None:
    """At least 100 unique cases; every principal and operation appears, allows and denies."""
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    assert len(CASES) >= 100
    assert {c.who for c in CASES} >= set(PRINCIPALS)
    assert {c.op for c in CASES} == {"get", "list", "query", "create", "update", "delete"}
    assert any(c.allow for c in CASES)
    assert any(not c.allow for c in CASES)
    assert sum(c.name.startswith("hole_") for c in CASES) >= 10


# ---- running a case -----------------------------------------------------------------------


@dataclasses.dataclass
class RulesProject:
    """An emulator project with rules loaded, seeded, and a Python client that bypasses rules."""

    host: str
    project: str
    client: Any

    def rest(self, who: str) -> RestClient:
        """A REST client acting as the principal `who` (no token for anonymous)."""
        claims = TOKENS[who]
        if claims is None:
            return RestClient(self.host, self.project, None)
        claims = dict(claims)
        uid = claims.pop("uid")
        return RestClient(self.host, self.project, user_token(uid, self.project, **claims))

    def seed(self) -> None:
        """Put every seed document back to its initial state."""
        batch = self.client.batch()
        for path, data in SEED.items():
            batch.set(self.client.document(path), data)
        batch.commit()

    def snapshot(self, path: str) -> dict[str, Any] | None:
        data: dict[str, Any] | None = self.client.document(path).get().to_dict()
        return data


def _emulator_call(host: str, method: str, path: str, body: Any | None = None) -> int:
    request = urllib.request.Request(
        f"http://{host}/emulator/v1/projects/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return int(response.status)


@contextlib.contextmanager
def rules_project(host: str, project: str, rules: str) -> Iterator[RulesProject]:
    """Load `rules` into `project` on the emulator, seed it, and clear it afterwards."""
    rules_body = {"rules": {"files": [{"name": "firestore.rules", "content": rules}]}}
    assert _emulator_call(host, "PUT", f"{project}:securityRules", rules_body) == 200
    client = firestore.Client(project=project, credentials=AnonymousCredentials())
    setup = RulesProject(host, project, client)
    setup.seed()
    try:
        yield setup
    finally:
        _emulator_call(host, "DELETE", f"{project}/databases/(default)/documents")
        client.close()


@pytest.fixture(scope="module")
def decided_rules(emulators: Any) -> Iterator[RulesProject]:
    """The project's firestore.rules, loaded into a project of its own."""
    with rules_project(emulators.firestore_host, PROJECT, RULES.read_text()) as setup:
        yield setup


@pytest.fixture(scope="module")
def schema_md_rules(emulators: Any) -> Iterator[RulesProject]:
    """The specification's example rules, loaded into another project."""
    with rules_project(emulators.firestore_host, SCHEMA_MD_PROJECT, SCHEMA_MD_RULES) as setup:
        yield setup


def perform(rest: RestClient, case: Case) -> tuple[int, bytes]:
    if case.op == "get":
        return rest.get(case.path)
    if case.op == "list":
        return rest.list(case.path)
    if case.op == "query":
        return rest.query(case.path, case.where)
    if case.op == "create":
        return rest.create(case.path, case.data)
    if case.op == "update":
        return rest.update(case.path, case.data, case.remove)
    if case.op == "delete":
        return rest.delete(case.path)
    raise AssertionError(f"unknown op {case.op}")


def check(setup: RulesProject, case: Case, allow: bool) -> None:
    """Run `case`; assert the HTTP outcome and, for writes, the document's state after."""
    writes = case.op in {"create", "update", "delete"}
    before = setup.snapshot(case.path) if writes else None
    if case.op == "create":
        assert before is None, "a create case needs a fresh document id"
    try:
        status, body = perform(setup.rest(case.who), case)
        after = setup.snapshot(case.path) if writes else None
    finally:
        if writes:
            setup.seed()

    expected = 200 if allow else 403
    assert status == expected, (
        f"{case.who} {case.op} {case.path}: expected {'allow' if allow else 'deny'} "
        f"(HTTP {expected}), got HTTP {status}: {body[:300]!r}"
    )
    if not writes:
        return
    if not allow:
        assert after == before, "a denied write must leave the document untouched"
    elif case.op == "delete":
        assert after is None
    else:
        assert after is not None
        for field, value in case.data.items():
            got: Any = after
            for part in field.split("."):
                got = got[part]
            assert got == value
        if any("." in field for field in case.data):
            # A nested path changes only its key: the map's other keys are kept.
            assert after["feature_overrides"]["tactile_sensors"] is True
        for field in case.remove:
            assert field not in after


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case, decided_rules: RulesProject) -> None:
    check(decided_rules, case, case.allow)


HOLES = [c for c in CASES if c.name.startswith("hole_")]


@pytest.mark.parametrize("case", HOLES, ids=[c.name for c in HOLES])
def test_hole_is_open_in_schema_md_rules(case: Case, schema_md_rules: RulesProject) -> None:
    """Each regression case really exercises a hole: the specification's rules decide it the other way."""
    check(schema_md_rules, case, not case.allow)


def test_docs_state_the_matrix_size() -> None:
    docs = (RULES.parent / "docs" / "deploy.md").read_text()
    assert f"matrix of {len(CASES)} cases" in docs
    assert f"The {len(HOLES)} `hole_*` cases" in docs
