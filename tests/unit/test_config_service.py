"""CustomerConfigService with a fake reader and a fake invalidation feed (no network)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import logs
from shared.config_service import (
    CustomerConfigService,
    FetchedDoc,
    Invalidation,
    parse_invalidation,
    salvage,
)
from shared.errors import ConfigurationError, TransientError
from shared.features import Reason
from shared.models import BundleTier, Feature
from shared.settings import load_settings

SETTINGS = load_settings({})


class FakeReader:
    """In-memory documents; counts round trips; can be switched off."""

    def __init__(self, docs: dict[tuple[str, str], dict[str, Any]] | None = None) -> None:
        self.docs = docs or {}
        self.calls: list[list[tuple[str, str]]] = []
        self.down = False
        self.versions: dict[tuple[str, str], datetime] = {}
        """Update times of the documents that have one."""

    def get_documents(
        self, keys: Sequence[tuple[str, str]], timeout: float
    ) -> dict[tuple[str, str], FetchedDoc]:
        self.calls.append(list(keys))
        if self.down:
            raise TransientError("unavailable")
        return {k: FetchedDoc(self.docs.get(k), self.versions.get(k)) for k in keys}


class FakeFeed:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.on_message: Callable[[Invalidation | None], None] | None = None
        self.on_reset: Callable[[str], None] | None = None
        self.closed = False
        self.starts = 0

    def start(
        self, on_message: Callable[[Invalidation | None], None], on_reset: Callable[[str], None]
    ) -> None:
        self.starts += 1
        if self.fail:
            raise RuntimeError("no pubsub")
        self.on_message, self.on_reset = on_message, on_reset

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def base_docs() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        ("customers", "c1"): {
            "schema_version": 1,
            "bundle_tier": "pro",
            "feature_overrides": {"tactile": True},
        },
        ("feature_flags", "c1"): {"schema_version": 1, "sim2real": True},
        ("feature_flags", "_global"): {"schema_version": 1, "streaming_export": False},
        ("scenes", "s1"): {
            "schema_version": 1,
            "customer_id": "c1",
            "data_pack_tier": "full",
            "max_variations": 100,
        },
    }


def make(
    docs: Mapping[tuple[str, str], dict[str, Any]] | None = None, **kwargs: Any
) -> tuple[CustomerConfigService, FakeReader, FakeFeed, Clock]:
    reader = FakeReader(dict(docs if docs is not None else base_docs()))
    feed = FakeFeed()
    clock = Clock()
    kwargs.setdefault("ttl_seconds", 60)
    kwargs.setdefault("retry_seconds", 5)
    service = CustomerConfigService(reader, feed, settings=SETTINGS, clock=clock, **kwargs)
    return service, reader, feed, clock


@pytest.fixture
def captured_logs() -> list[logging.LogRecord]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logs.get_logger()
    handler = Keep()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_customer_config_resolves_every_layer_with_reasons() -> None:
    service, _, _, _ = make()
    config = service.get_customer_config("c1")
    assert config.exists
    assert config.tier is BundleTier.PRO
    assert not config.stale
    assert config.features[Feature.SIM2REAL].reason is Reason.CUSTOMER_FLAG
    assert config.features[Feature.TACTILE].reason is Reason.OVERRIDE
    assert config.features[Feature.AUDIO_NARRATION].reason is Reason.TIER_DEFAULT
    assert config.features[Feature.STREAMING_EXPORT].reason is Reason.GLOBAL_KILL_SWITCH
    answer = service.is_feature_enabled("c1", "tactile")
    assert answer
    assert answer.reason is Reason.OVERRIDE
    assert "feature_overrides" in answer.explain()
    assert not service.is_feature_enabled("c1", Feature.MULTI_ROBOT)
    assert Feature.SIM2REAL in service.feature_flags("c1").enabled()


def test_cold_customer_is_one_round_trip_warm_is_zero() -> None:
    service, reader, _, _ = make()
    service.get_customer_config("c1")
    assert len(reader.calls) == 1
    assert set(reader.calls[0]) == {
        ("customers", "c1"),
        ("feature_flags", "c1"),
        ("feature_flags", "_global"),
    }
    service.get_customer_config("c1")
    service.is_feature_enabled("c1", "sim2real")
    service.feature_flags("c1")
    assert len(reader.calls) == 1


def test_cold_scene_with_known_owner_is_one_round_trip() -> None:
    service, reader, _, _ = make()
    config = service.get_scene_config("s1", customer_id="c1")
    assert len(reader.calls) == 1
    assert len(reader.calls[0]) == 4
    assert config.effective.max_variations == 100
    assert [c.field for c in config.clamped] == ["data_pack_tier"]
    service.get_scene_config("s1")
    assert len(reader.calls) == 1  # warm: zero


def test_cold_scene_without_owner_takes_two_then_remembers_owner() -> None:
    service, reader, _, _ = make()
    service.get_scene_config("s1")
    assert len(reader.calls) == 2
    service.get_scene_config.cache_clear()
    service.get_scene_config("s1")  # owner remembered (and checked): one round trip
    assert len(reader.calls) == 3
    assert len(reader.calls[2]) == 4


def test_wrong_owner_hint_is_corrected() -> None:
    docs = base_docs()
    docs[("customers", "c2")] = {"schema_version": 1, "bundle_tier": "enterprise"}
    service, _, _, _ = make(docs)
    config = service.get_scene_config("s1", customer_id="c2")
    assert config.customer is not None
    assert config.customer.customer_id == "c1"
    assert config.effective.bundle_tier is BundleTier.PRO


def test_ttl_expiry_reads_again() -> None:
    service, reader, _, clock = make(ttl_seconds=10)
    service.get_customer_config("c1")
    clock.now += 11
    service.get_customer_config("c1")
    assert len(reader.calls) == 2


def test_invalidation_drops_only_that_document() -> None:
    service, reader, feed, _ = make()
    service.get_customer_config("c1")
    reader.docs[("customers", "c1")]["bundle_tier"] = "enterprise"
    assert feed.on_message is not None
    feed.on_message(Invalidation("customers", "c1", customer_id="c1"))
    config = service.get_customer_config("c1")
    assert config.tier is BundleTier.ENTERPRISE
    assert reader.calls[-1] == [("customers", "c1")]  # flags stayed cached


def test_stream_reset_and_undecodable_message_drop_the_cache(
    captured_logs: list[logging.LogRecord],
) -> None:
    service, reader, feed, _ = make()
    service.get_customer_config("c1")
    assert feed.on_reset is not None
    assert feed.on_message is not None
    feed.on_reset("stream error Unavailable, reconnected")
    service.get_customer_config("c1")
    assert len(reader.calls) == 2
    feed.on_message(None)
    service.get_customer_config("c1")
    assert len(reader.calls) == 3
    assert any("cache dropped" in r.getMessage() for r in captured_logs)


def test_class_level_cache_clear_clears_every_instance() -> None:
    service, reader, _, _ = make()
    service.get_customer_config("c1")
    CustomerConfigService.get_customer_config.cache_clear()
    service.get_customer_config("c1")
    assert len(reader.calls) == 2


def test_fetch_racing_an_invalidation_is_not_cached() -> None:
    service, reader, feed, _ = make()
    original = reader.get_documents

    def racing(keys: Sequence[tuple[str, str]], timeout: float) -> dict[Any, FetchedDoc]:
        result = original(keys, timeout)
        assert feed.on_message is not None
        feed.on_message(Invalidation("customers", "c1"))  # arrives while the read is in flight
        return result

    reader.get_documents = racing  # type: ignore[method-assign]
    service.get_customer_config("c1")
    reader.get_documents = original  # type: ignore[method-assign]
    service.get_customer_config("c1")
    assert reader.calls[-1] == [("customers", "c1")]


def test_unavailable_gives_tier_defaults_stale_logs_once_and_recovers(
    captured_logs: list[logging.LogRecord],
) -> None:
    service, reader, _, clock = make()
    reader.down = True
    first = service.get_customer_config("c1")
    second = service.get_scene_config("s1", customer_id="c1")
    assert first.stale
    assert not first.exists
    assert first.tier is BundleTier.STANDARD
    assert second.stale
    assert second.effective.bundle_tier is BundleTier.STANDARD
    assert len(reader.calls) == 1  # no read while waiting for the retry time
    warnings = [r for r in captured_logs if "Firestore unavailable" in r.getMessage()]
    assert len(warnings) == 1
    clock.now += 6
    service.get_customer_config("c1")
    assert len(reader.calls) == 2  # tried again after retry_seconds, still down
    reader.down = False
    clock.now += 6
    fresh = service.get_customer_config("c1")
    assert not fresh.stale
    assert fresh.tier is BundleTier.PRO
    assert any("reachable again" in r.getMessage() for r in captured_logs)
    assert len([r for r in captured_logs if "Firestore unavailable" in r.getMessage()]) == 1


def test_unavailable_after_expiry_serves_last_known_values_stale() -> None:
    service, reader, _, clock = make(ttl_seconds=10)
    service.get_customer_config("c1")
    clock.now += 11
    reader.down = True
    config = service.get_customer_config("c1")
    assert config.stale
    assert config.tier is BundleTier.PRO


def test_missing_customer_falls_back_to_standard_not_stale() -> None:
    service, _, _, _ = make({})
    config = service.get_customer_config("nobody")
    assert not config.exists
    assert not config.stale
    assert config.tier is BundleTier.STANDARD
    assert not config.features[Feature.AUDIO_NARRATION].enabled


def test_invalid_fields_get_defaults_and_a_warning(
    captured_logs: list[logging.LogRecord],
) -> None:
    docs = base_docs()
    docs[("customers", "c1")] = {
        "schema_version": 1,
        "bundle_tier": "platinum",
        "email": "not an email",
        "organization_name": "Lab",
    }
    docs[("scenes", "s1")]["min_quality_score"] = 1.5
    service, _, _, _ = make(docs)
    config = service.get_scene_config("s1", customer_id="c1")
    assert config.customer is not None
    assert config.customer.tier is BundleTier.STANDARD
    assert config.customer.customer.organization_name == "Lab"
    assert config.customer.customer.email is None
    assert config.effective.min_quality_score == 0.70  # standard tier default
    fields = {p.error.field for p in config.problems}
    assert fields == {"bundle_tier", "email", "min_quality_score"}
    assert any("untrusted fields in customers/c1" in r.getMessage() for r in captured_logs)


def test_document_marked_invalid_by_trigger_is_not_trusted() -> None:
    service, _, feed, _ = make()
    assert feed.on_message is None
    service.start()
    assert feed.on_message is not None
    feed.on_message(
        Invalidation(
            "customers", "c1", valid=False, errors=({"field": "feature_overrides.tactile"},)
        )
    )
    config = service.get_customer_config("c1")
    assert config.features[Feature.TACTILE].reason is Reason.TIER_DEFAULT
    assert [p.error.field for p in config.problems] == ["feature_overrides"]


def test_a_mark_applies_to_the_version_it_judged_never_to_a_newer_one() -> None:
    # Messages may come out of order or twice: the "invalid" of an old version arriving after
    # the fixed version must not downgrade the customer for good.
    service, reader, feed, _ = make()
    service.start()
    assert feed.on_message is not None
    fixed = datetime(2026, 12, 1, 10, 0, 5, tzinfo=UTC)
    reader.docs[("customers", "c1")]["bundle_tier"] = "enterprise"
    reader.versions[("customers", "c1")] = fixed
    feed.on_message(Invalidation("customers", "c1", valid=True, update_time=fixed.isoformat()))
    feed.on_message(
        Invalidation(
            "customers",
            "c1",
            valid=False,
            errors=({"field": "bundle_tier"},),
            update_time="2026-12-01T10:00:00Z",  # the earlier, invalid version
        )
    )
    config = service.get_customer_config("c1")
    assert (config.tier.value, config.problems) == ("enterprise", ())
    # The version it judged (or an older read) is still not trusted.
    reader.versions[("customers", "c1")] = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    feed.on_message(
        Invalidation(
            "customers",
            "c1",
            valid=False,
            errors=({"field": "bundle_tier"},),
            update_time="2026-12-01T10:00:00Z",
        )
    )
    assert service.get_customer_config("c1").tier.value == "standard"


def test_a_lost_stream_drops_the_marks_with_the_cache() -> None:
    # The message that lifted a mark may be among those missed.
    service, _, feed, _ = make()
    service.start()
    assert feed.on_message is not None
    assert feed.on_reset is not None
    feed.on_message(
        Invalidation(
            "customers", "c1", valid=False, errors=({"field": "feature_overrides.tactile"},)
        )
    )
    assert service.get_customer_config("c1").features[Feature.TACTILE].reason is Reason.TIER_DEFAULT
    feed.on_reset("stream error")
    config = service.get_customer_config("c1")
    assert config.features[Feature.TACTILE].reason is not Reason.TIER_DEFAULT
    assert config.problems == ()


def test_salvage_contract_order_and_unrecoverable_scene() -> None:
    model, problems = salvage(
        "customers",
        {
            "schema_version": 1,
            "bundle_tier": "pro",
            "contract_start": "2026-01-01T00:00:00Z",
            "contract_end": "2025-01-01T00:00:00Z",
        },
    )
    assert model is not None
    assert model.contract_end is None
    assert problems
    scene, problems = salvage("scenes", {"schema_version": 1, "customer_id": 7})
    assert scene is None
    assert problems[0].field == "customer_id"


def test_override_file_merges_fields_and_applies_during_outage(tmp_path: Any) -> None:
    path = tmp_path / "override.json"
    path.write_text(
        json.dumps(
            {
                "_comment": "emergency",
                "customers": {"c1": {"bundle_tier": "enterprise"}},
                "feature_flags": {"_global": {"schema_version": 1, "sim2real": False}},
            }
        )
    )
    settings = load_settings({"BLUEPRINT_CONFIG_FILE": str(path)})
    reader = FakeReader(base_docs())
    service = CustomerConfigService(reader, FakeFeed(), settings=settings)
    config = service.get_customer_config("c1")
    assert config.tier is BundleTier.ENTERPRISE
    assert config.customer.feature_overrides == {Feature.TACTILE: True}  # merged, not replaced
    assert config.features[Feature.SIM2REAL].reason is Reason.GLOBAL_KILL_SWITCH
    assert set(config.overridden) == {"customers/c1", "feature_flags/_global"}
    service.cache_clear()
    reader.down = True
    outage = service.get_customer_config("c1")
    assert outage.stale
    assert outage.tier is BundleTier.ENTERPRISE


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not JSON"),
        ('{"customer": {}}', "unknown collection 'customer'"),
        ('{"customers": {"c1": 3}}', "must map document ids"),
    ],
)
def test_bad_override_file_fails_at_start_naming_it(
    tmp_path: Any, content: str, needle: str
) -> None:
    path = tmp_path / "o.json"
    path.write_text(content)
    settings = load_settings({"BLUEPRINT_CONFIG_FILE": str(path)})
    with pytest.raises(ConfigurationError, match="BLUEPRINT_CONFIG_FILE") as info:
        CustomerConfigService(FakeReader(), FakeFeed(), settings=settings)
    assert needle in str(info.value)


def test_feed_failure_leaves_ttl_cache_working(captured_logs: list[logging.LogRecord]) -> None:
    reader = FakeReader(base_docs())
    feed = FakeFeed(fail=True)
    service = CustomerConfigService(reader, feed, settings=SETTINGS)
    assert service.get_customer_config("c1").tier is BundleTier.PRO
    assert not service.live
    assert any("stream not started" in r.getMessage() for r in captured_logs)


def test_close_closes_the_feed_once() -> None:
    service, _, feed, _ = make()
    service.start()
    assert service.live
    service.close()
    service.close()
    assert feed.closed
    assert not service.live


def test_parse_invalidation_variants() -> None:
    body = json.dumps(
        {
            "collection": "customers",
            "document_id": "c1",
            "customer_id": "c1",
            "change_kind": "update",
            "valid": False,
            "errors": [{"field": "email", "value": "'x'", "expected": "an email"}],
            "event_id": "e1",
            "update_time": "2025-01-01T00:00:00Z",
        }
    ).encode()
    parsed = parse_invalidation(body, {})
    assert parsed == Invalidation(
        "customers",
        "c1",
        "c1",
        "update",
        False,
        ({"field": "email", "value": "'x'", "expected": "an email"},),
        update_time="2025-01-01T00:00:00Z",
        event_id="e1",
    )
    assert parsed.error_fields == ("email",)
    from_attrs = parse_invalidation(b"", {"document": "scenes/s9", "valid": "true"})
    assert from_attrs is not None
    assert (from_attrs.collection, from_attrs.document_id) == (
        "scenes",
        "s9",
    )
    assert parse_invalidation(b"garbage", {}) is None


def test_global_flags_never_switch_a_feature_on_even_for_a_customer_named_global() -> None:
    docs = base_docs()
    docs[("feature_flags", "_global")] = {"schema_version": 1, "tactile": True}
    service, _, _, _ = make(docs)
    assert not service.is_feature_enabled("_global", "tactile")


@pytest.mark.parametrize("value", ["false", 0, "off", None])
def test_a_global_kill_switch_that_is_not_a_boolean_still_switches_off(value: Any) -> None:
    # A kill switch fails safe: "false" typed as text was ignored, and the feature stayed on.
    docs = base_docs()
    docs[("feature_flags", "_global")] = {"schema_version": 1, "tactile": value}
    service, _, _, _ = make(docs)
    answer = service.is_feature_enabled("c1", "tactile")
    if value is None:  # no value: not a switch at all
        assert answer.enabled
    else:
        assert not answer.enabled
        assert answer.reason is Reason.GLOBAL_KILL_SWITCH
