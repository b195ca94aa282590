"""ops.rollout on the real emulator: selection, flags written, audit, undo, reasons."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ops import rollout_store
from ops.rollout import RolloutError, bucket, rollout
from shared.config.adapters import FirestoreConfigReader
from shared.config_service import CustomerConfigService
from shared.features import Reason
from shared.models import BundleTier, Feature
from shared.settings import load_settings

NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.UTC)
TIERS = ["standard", "pro", "enterprise", "foundation"]
IDS = [f"cust_{i:03d}" for i in range(120)]
HAND_ON = "cust_hand"  # tactile switched on by hand, in the rollout's first 10 %
HAND_OFF = "cust_migrated"  # explicit false (as migration writes), in the first 10 %
BAD = "cust_badflags"

pytestmark = pytest.mark.usefixtures("clean_firestore")


def _first_ten(prefix: str) -> str:
    """An id with a given prefix whose tactile bucket is below 10."""
    return next(f"{prefix}_{i}" for i in range(10_000) if bucket("tactile", f"{prefix}_{i}") < 10)


def _seed(db: Any) -> dict[str, str]:
    hand_on, hand_off, bad = _first_ten(HAND_ON), _first_ten(HAND_OFF), _first_ten(BAD)
    batch = db.batch()
    for i, cid in enumerate([*IDS, hand_on, hand_off, bad]):
        tier = TIERS[i % 4]
        batch.set(
            db.collection("customers").document(cid), {"schema_version": 1, "bundle_tier": tier}
        )
    flags = db.collection("feature_flags")
    batch.set(flags.document(hand_on), {"schema_version": 1, "tactile": True, "sim2real": True})
    batch.set(
        flags.document(hand_off),
        {"schema_version": 1, "tactile": False, "audio_narration": True, "_comment": "migrated"},
    )
    batch.set(flags.document(bad), {"schema_version": 1, "tactile": "yes"})
    batch.commit()
    return {"on": hand_on, "off": hand_off, "bad": bad}


def _flag_docs(db: Any) -> dict[str, dict[str, Any]]:
    return {s.id: s.to_dict() for s in db.collection("feature_flags").stream()}


def _all_docs(db: Any) -> dict[str, Any]:
    out = {f"feature_flags/{k}": v for k, v in _flag_docs(db).items()}
    for audit in db.collection("feature_rollouts").stream():
        out[f"feature_rollouts/{audit.id}"] = audit.to_dict()
        for mark in audit.reference.collection("rolled_out").stream():
            out[f"feature_rollouts/{audit.id}/rolled_out/{mark.id}"] = mark.to_dict()
    return out


def _expected(percent: int, ids: list[str], tier: str | None = None) -> set[str]:
    return {
        c
        for i, c in enumerate(ids)
        if bucket("tactile", c) < percent and (tier is None or TIERS[i % 4] == tier)
    }


def test_a_dry_run_writes_nothing_and_says_what_it_would_do(firestore_client: Any) -> None:
    special = _seed(firestore_client)
    before = _all_docs(firestore_client)
    result = rollout(firestore_client, "tactile", 10, dry_run=True, now=NOW, actor="ops@test")
    assert _all_docs(firestore_client) == before
    everyone = [*IDS, special["on"], special["off"], special["bad"]]
    assert set(result.selected) == _expected(10, everyone)
    assert set(result.turned_on) == set(result.selected) - {special["on"], special["bad"]}
    assert result.already_on == (special["on"],)
    assert result.skipped_invalid == (special["bad"],)


def test_rollout_raise_undo_and_the_audit(firestore_client: Any) -> None:
    special = _seed(firestore_client)
    everyone = sorted([*IDS, special["on"], special["off"], special["bad"]])
    original = _flag_docs(firestore_client)

    first = rollout(firestore_client, Feature.TACTILE, 10, now=NOW, actor="ops@test", page_size=7)
    assert first.scanned == len(everyone)
    assert set(first.selected) == _expected(10, everyone)
    assert list(first.selected) == sorted(first.selected)  # id order: the hash is reproducible
    turned = set(first.turned_on)
    assert turned == set(first.selected) - {special["on"], special["bad"]}
    flags = _flag_docs(firestore_client)
    for cid in turned:
        assert flags[cid]["tactile"] is True
        assert flags[cid]["rollouts"] == {"tactile": 10}
        assert flags[cid]["schema_version"] == 1
    # Other flags kept; the hand-set flag and the invalid document untouched.
    assert flags[special["off"]]["audio_narration"] is True
    assert flags[special["off"]]["_comment"] == "migrated"
    assert flags[special["on"]] == original[special["on"]]
    assert flags[special["bad"]] == original[special["bad"]]
    outside = set(everyone) - set(first.selected)
    assert not any(flags.get(c, {}).get("tactile") for c in outside - {special["on"]})

    audit = firestore_client.collection("feature_rollouts").document("tactile").get().to_dict()
    assert audit["state"] == "active"
    assert (audit["percent"], audit["tier"]) == (10, None)
    assert audit["customers_selected"] == len(first.selected)
    assert audit["customers_turned_on"] == len(turned)
    assert audit["selected_sha256"] == first.selected_sha256
    assert audit["updated_by"] == "ops@test"
    assert len(audit["history"]) == 1
    entry = audit["history"][0]
    assert entry["action"] == "rollout"
    assert entry["turned_on"] == len(turned)
    assert entry["by"] == "ops@test"
    assert entry["at"] == NOW
    marker = (
        firestore_client.document(f"feature_rollouts/tactile/rolled_out/{special['off']}")
        .get()
        .to_dict()
    )
    assert (marker["previous"], marker["had_document"], marker["percent"]) == (False, True, 10)

    # The same call again changes nothing; 20 % keeps the first 10 % and adds the next.
    again = rollout(firestore_client, "tactile", 10, now=NOW, actor="ops@test")
    assert again.turned_on == ()
    second = rollout(firestore_client, "tactile", 20, now=NOW, actor="ops@test")
    assert set(first.selected) < set(second.selected)
    assert set(second.selected) == _expected(20, everyone)
    assert set(second.turned_on) == set(second.selected) - set(first.selected)
    flags = _flag_docs(firestore_client)
    assert {flags[c]["rollouts"]["tactile"] for c in second.turned_on} == {20}
    audit = firestore_client.collection("feature_rollouts").document("tactile").get().to_dict()
    assert audit["percent"] == 20
    assert [h["percent"] for h in audit["history"]] == [10, 10, 20]
    assert audit["history"][-1]["previous_percent"] == 10
    assert audit["customers_turned_on"] == len(turned) + len(second.turned_on)

    with pytest.raises(RolloutError, match="percent=5 is below the active rollout"):
        rollout(firestore_client, "tactile", 5)
    with pytest.raises(RolloutError, match="tier='pro' narrows"):
        rollout(firestore_client, "tactile", 30, tier="pro")

    # Someone switches one rolled-out customer off by hand: undo leaves that one alone.
    by_hand = sorted(turned)[0]
    firestore_client.collection("feature_flags").document(by_hand).update({"tactile": False})
    undone = rollout(firestore_client, "tactile", None, undo=True, now=NOW, actor="ops@test")
    assert undone.left_alone == (by_hand,)
    assert set(undone.reverted) == (turned | set(second.turned_on)) - {by_hand}
    after = _flag_docs(firestore_client)
    expected = {**original}
    expected[by_hand] = {**after[by_hand]}
    assert after[by_hand] == {"schema_version": 1, "tactile": False}  # no rollout entry left
    assert {k: v for k, v in after.items() if k != by_hand} == {
        k: v for k, v in expected.items() if k != by_hand
    }  # every other flags document exactly as before the rollout (absent ones deleted)
    audit = firestore_client.collection("feature_rollouts").document("tactile").get().to_dict()
    assert audit["state"] == "undone"
    assert audit["customers_turned_on"] == 0
    assert audit["history"][-1]["action"] == "undo"
    assert list(firestore_client.collection("feature_rollouts/tactile/rolled_out").stream()) == []

    # After an undo a smaller rollout may start again.
    assert rollout(firestore_client, "tactile", 5, now=NOW).selected


def test_tier_filter_selects_only_that_tier(firestore_client: Any) -> None:
    _seed(firestore_client)
    result = rollout(firestore_client, "tactile", 50, tier="pro", now=NOW)
    tiers = {s.id: s.get("bundle_tier") for s in firestore_client.collection("customers").stream()}
    pro = {c for c, t in tiers.items() if t == "pro" and bucket("tactile", c) < 50}
    assert pro
    assert set(result.selected) == pro
    assert result.tier is BundleTier.PRO
    widened = rollout(firestore_client, "tactile", 50, now=NOW)  # every tier: a widening
    assert set(result.selected) < set(widened.selected)


def test_config_service_names_the_rollout_and_global_still_wins(firestore_client: Any) -> None:
    special = _seed(firestore_client)
    result = rollout(firestore_client, "tactile", 10, now=NOW)
    cid = next(c for c in result.turned_on if c != special["off"])
    settings = load_settings({})

    def answer(customer: str) -> Any:
        service = CustomerConfigService(
            FirestoreConfigReader(settings, client=firestore_client),
            live=False,
            settings=settings,
            ttl_seconds=0,
        )
        return service.is_feature_enabled(customer, "tactile")

    got = answer(cid)
    assert (got.enabled, got.reason) == (True, Reason.ROLLOUT)
    assert "gradual rollout" in got.explain()
    assert answer(special["on"]).reason is Reason.CUSTOMER_FLAG  # set by hand, not the rollout
    not_selected = next(c for c in IDS if c not in result.selected)
    assert answer(not_selected).reason is not Reason.ROLLOUT

    firestore_client.collection("feature_flags").document("_global").set(
        {"schema_version": 1, "tactile": False}
    )
    killed = answer(cid)
    assert (killed.enabled, killed.reason) == (False, Reason.GLOBAL_KILL_SWITCH)
    assert rollout(firestore_client, "tactile", 10, dry_run=True).globally_off is True
    assert "_global" not in {c for c in result.turned_on}


def test_a_concurrent_hand_edit_makes_the_page_read_again(
    firestore_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    special = _seed(firestore_client)
    target = special["off"]
    real = rollout_store.Store.flag_docs
    raced: list[str] = []

    def racing(self: Any, ids: Any) -> Any:
        snaps = real(self, ids)
        if target in ids and not raced:
            raced.append(target)
            # After the read, before the commit: someone switches it on by hand.
            firestore_client.collection("feature_flags").document(target).update({"tactile": True})
        return snaps

    monkeypatch.setattr(rollout_store.Store, "flag_docs", racing)
    result = rollout(firestore_client, "tactile", 10, now=NOW)
    assert raced  # the edit happened between the page's read and its commit
    assert target in result.already_on
    assert target not in result.turned_on
    flags = firestore_client.collection("feature_flags").document(target).get().to_dict()
    assert "rollouts" not in flags  # the hand edit stands: undo will not touch it


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"feature": "teleport", "percent": 10}, "feature='teleport'"),
        ({"feature": "tactile", "percent": 0}, "percent=0"),
        ({"feature": "tactile", "percent": 101}, "percent=101"),
        ({"feature": "tactile", "percent": 10, "tier": "platinum"}, "tier='platinum'"),
        ({"feature": "tactile", "percent": None, "undo": True}, "no rollout of it to undo"),
    ],
)
def test_bad_requests_are_refused_naming_the_value(
    firestore_client: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(RolloutError, match=message):
        rollout(firestore_client, **kwargs)
