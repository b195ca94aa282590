"""BlueprintProvider (OpenFeature) with fake config sources: each reason and error code mapped."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason as OFReason

from shared.config_service import CustomerConfig, CustomerConfigService, FetchedDoc
from shared.errors import TransientError
from shared.features import FeatureDecision, Reason, resolve_features
from shared.models import BundleTier, Customer, Feature
from shared.openfeature import PROVIDER_NAME, BlueprintProvider, openfeature_reason
from shared.settings import load_settings

LAB = EvaluationContext(targeting_key="lab_001")


class FakeSource:
    """Answers `get_customer_config` from in-memory layers, like the service would resolve them."""

    def __init__(
        self,
        tier: BundleTier = BundleTier.PRO,
        *,
        flags: Mapping[Feature, bool] | None = None,
        overrides: Mapping[Feature, bool] | None = None,
        global_flags: Mapping[Feature, bool] | None = None,
        exists: bool = True,
        stale: bool = False,
        error: Exception | None = None,
    ) -> None:
        self.tier, self.flags, self.overrides = tier, flags, overrides
        self.global_flags, self.exists, self.stale, self.error = global_flags, exists, stale, error
        self.asked: list[str] = []

    def get_customer_config(self, customer_id: str) -> CustomerConfig:
        self.asked.append(customer_id)
        if self.error is not None:
            raise self.error
        return CustomerConfig(
            customer_id=customer_id,
            customer=Customer(schema_version=1, bundle_tier=self.tier),
            exists=self.exists,
            features=resolve_features(self.tier, self.flags, self.overrides, self.global_flags),
            stale=self.stale,
        )


@pytest.fixture
def client_for() -> Iterator[Any]:
    """`client_for(source, **kw)`: an OpenFeature client (own domain) over a BlueprintProvider."""
    domains: list[str] = []

    def make(source: FakeSource, **kwargs: Any) -> OpenFeatureClient:
        domain = f"unit-{uuid.uuid4().hex[:8]}"
        domains.append(domain)
        api.set_provider_and_wait(BlueprintProvider(source, **kwargs), domain=domain)
        return api.get_client(domain)

    yield make
    api.clear_providers()


@pytest.mark.parametrize(
    ("source", "value", "reason", "ours"),
    [
        (FakeSource(BundleTier.ENTERPRISE), True, OFReason.DEFAULT, Reason.TIER_DEFAULT),
        (FakeSource(BundleTier.PRO), False, OFReason.DEFAULT, Reason.TIER_DEFAULT),
        (
            FakeSource(flags={Feature.TACTILE: True}),
            True,
            OFReason.TARGETING_MATCH,
            Reason.CUSTOMER_FLAG,
        ),
        (
            FakeSource(flags={Feature.TACTILE: True}, overrides={Feature.TACTILE: False}),
            False,
            OFReason.TARGETING_MATCH,
            Reason.OVERRIDE,
        ),
        (
            FakeSource(BundleTier.ENTERPRISE, global_flags={Feature.TACTILE: False}),
            False,
            OFReason.DISABLED,
            Reason.GLOBAL_KILL_SWITCH,
        ),
    ],
    ids=["tier-on", "tier-off", "customer-flag", "override", "global-kill-switch"],
)
def test_each_reason_maps_through_the_openfeature_client(
    client_for: Any, source: FakeSource, value: bool, reason: OFReason, ours: Reason
) -> None:
    details = client_for(source).get_boolean_details("tactile", not value, LAB)
    assert details.value is value
    assert details.reason == reason
    assert details.error_code is None
    assert details.variant == ("on" if value else "off")
    assert details.flag_metadata["reason"] == ours.value
    assert details.flag_metadata["tier"] == source.tier.value
    assert details.flag_metadata["stale"] is False
    assert str(details.flag_metadata["explanation"]).startswith(f"tactile is {details.variant}:")
    assert source.asked == ["lab_001"], "targeting key = customer id"


def test_stale_answer_is_stale_whatever_layer_decided(client_for: Any) -> None:
    source = FakeSource(BundleTier.ENTERPRISE, global_flags={Feature.TACTILE: False}, stale=True)
    details = client_for(source).get_boolean_details("tactile", True, LAB)
    assert details.value is False, "the stale answer is still the service's answer"
    assert details.reason == OFReason.STALE
    assert details.flag_metadata["reason"] == Reason.GLOBAL_KILL_SWITCH.value
    assert details.flag_metadata["stale"] is True
    assert "(stale: Firestore unavailable)" in str(details.flag_metadata["explanation"])


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_of_ours_has_an_openfeature_reason(reason: Reason) -> None:
    # A new customer-specific layer (e.g. a rollout) is a targeting match without code here.
    expected = {
        Reason.TIER_DEFAULT: OFReason.DEFAULT,
        Reason.GLOBAL_KILL_SWITCH: OFReason.DISABLED,
    }.get(reason, OFReason.TARGETING_MATCH)
    decision = FeatureDecision(Feature.TACTILE, True, reason, BundleTier.PRO)
    assert openfeature_reason(decision, stale=False) == expected
    assert openfeature_reason(decision, stale=True) == OFReason.STALE


def assert_error(details: Any, code: ErrorCode, default: object, *words: str) -> None:
    assert details.value == default, "the caller's default comes back on every error"
    assert details.reason == OFReason.ERROR
    assert details.error_code == code
    for word in words:
        assert word in (details.error_message or "")


def test_unknown_flag_is_flag_not_found(client_for: Any) -> None:
    source = FakeSource()
    details = client_for(source).get_boolean_details("tactle", True, LAB)
    assert_error(details, ErrorCode.FLAG_NOT_FOUND, True, "'tactle'", "tactile")
    assert source.asked == [], "no lookup for a flag that does not exist"


@pytest.mark.parametrize("context", [None, EvaluationContext(), EvaluationContext("")])
def test_missing_targeting_key(client_for: Any, context: EvaluationContext | None) -> None:
    details = client_for(FakeSource()).get_boolean_details("tactile", True, context)
    assert_error(details, ErrorCode.TARGETING_KEY_MISSING, True, "customer id")


@pytest.mark.parametrize("key", ["a/b", "_global", "__x__", ".."])
def test_a_targeting_key_that_cannot_be_a_customer_id_is_invalid_context(
    client_for: Any, key: str
) -> None:
    source = FakeSource()
    details = client_for(source).get_boolean_details("tactile", True, EvaluationContext(key))
    assert_error(details, ErrorCode.INVALID_CONTEXT, True, repr(key))
    assert source.asked == []


@pytest.mark.parametrize(
    ("method", "default"),
    [
        ("get_string_details", "x"),
        ("get_integer_details", 3),
        ("get_float_details", 0.5),
        ("get_object_details", {"a": 1}),
    ],
)
def test_non_boolean_types_are_type_mismatch(client_for: Any, method: str, default: Any) -> None:
    client = client_for(FakeSource())
    details = getattr(client, method)("tactile", default, LAB)
    assert_error(details, ErrorCode.TYPE_MISMATCH, default, "boolean")
    unknown = getattr(client, method)("no_such_feature", default, LAB)
    assert_error(unknown, ErrorCode.FLAG_NOT_FOUND, default, "no_such_feature")


def test_service_failure_is_general_with_the_default(client_for: Any) -> None:
    source = FakeSource(error=RuntimeError("broken setup"))
    details = client_for(source).get_boolean_details("tactile", True, LAB)
    assert_error(details, ErrorCode.GENERAL, True, "RuntimeError: broken setup", "lab_001")


def test_unknown_customer_gets_standard_defaults_or_an_error_if_asked(client_for: Any) -> None:
    missing = FakeSource(BundleTier.STANDARD, exists=False)
    details = client_for(missing).get_boolean_details("tactile", True, LAB)
    assert details.value is False
    assert details.reason == OFReason.DEFAULT
    assert details.flag_metadata["customer_exists"] is False
    assert details.flag_metadata["tier"] == "standard"

    strict = client_for(missing, unknown_customer="error").get_boolean_details("tactile", True, LAB)
    assert_error(strict, ErrorCode.INVALID_CONTEXT, True, "no customer 'lab_001'")

    # Firestore down: "does not exist" is not known, so the stale answer stands even when strict.
    down = FakeSource(BundleTier.STANDARD, exists=False, stale=True)
    stale = client_for(down, unknown_customer="error").get_boolean_details("tactile", True, LAB)
    assert stale.reason == OFReason.STALE


def test_bad_unknown_customer_option_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown_customer='maybe'"):
        BlueprintProvider(FakeSource(), unknown_customer="maybe")  # type: ignore[arg-type]


def test_metadata_name() -> None:
    assert BlueprintProvider(FakeSource()).get_metadata().name == PROVIDER_NAME == "blueprint"


class FakeReader:
    """Documents for the real CustomerConfigService; `down` makes every read fail."""

    def __init__(self, docs: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.docs, self.down = docs, False

    def get_documents(
        self, keys: Sequence[tuple[str, str]], timeout: float
    ) -> dict[tuple[str, str], FetchedDoc]:
        if self.down:
            raise TransientError("unavailable")
        return {k: FetchedDoc(self.docs.get(k)) for k in keys}


def test_over_the_real_service_and_its_outage(client_for: Any) -> None:
    reader = FakeReader(
        {
            ("customers", "lab_001"): {"schema_version": 1, "bundle_tier": "pro"},
            ("feature_flags", "lab_001"): {"schema_version": 1, "tactile": True},
        }
    )
    service = CustomerConfigService(reader, live=False, settings=load_settings({}))
    client = client_for(service)
    match = client.get_boolean_details("tactile", False, LAB)
    assert (match.value, match.reason) == (True, OFReason.TARGETING_MATCH)
    default = client.get_boolean_details("audio_narration", False, LAB)
    assert (default.value, default.reason) == (True, OFReason.DEFAULT)
    reader.down = True
    service.cache_clear()
    stale = client.get_boolean_details("tactile", False, LAB)
    assert stale.reason == OFReason.STALE
    assert stale.value is False, "no cached value: standard-tier defaults"


def test_provider_owns_the_service_it_creates(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []

    class Service(FakeSource):
        def start(self) -> Service:
            events.append("start")
            return self

        def close(self) -> None:
            events.append("close")

    monkeypatch.setattr("shared.openfeature.CustomerConfigService", Service)
    provider = BlueprintProvider()
    provider.initialize(EvaluationContext())
    provider.initialize(EvaluationContext())
    assert provider.resolve_boolean_details("tactile", False, LAB).reason == OFReason.DEFAULT
    provider.shutdown()
    assert events == ["start", "close"]
    passed = FakeSource()
    BlueprintProvider(passed).shutdown()  # a service passed in is the caller's to close


BLOCKED = """
import sys
sys.modules["openfeature"] = None  # as if openfeature-sdk were not installed
import functions.main, shared.config_service, shared.features, shared.publisher
assert not any(m.startswith("openfeature") and sys.modules[m] for m in sys.modules), "imported"
try:
    import shared.openfeature
except ImportError as exc:
    print(json.dumps({"type": type(exc).__name__, "name": exc.name, "message": str(exc)}))
else:
    print("null")
"""


def test_shared_imports_without_the_sdk_and_the_provider_names_the_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + BLOCKED],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout.strip().splitlines()[-1])
    assert error is not None, "shared.openfeature imported without the SDK"
    assert error["type"] == "ImportError"
    assert error["name"] == "openfeature"
    assert "[openfeature]" in error["message"]
    assert "openfeature-sdk==0.10.0" in error["message"]


def test_a_customer_never_read_while_firestore_is_down_is_not_said_to_be_missing(
    client_for: Any,
) -> None:
    source = FakeSource(BundleTier.STANDARD, exists=False, stale=True)
    details = client_for(source).get_boolean_details("tactile", False, LAB)
    assert details.flag_metadata["stale"] is True
    assert "customer_exists" not in details.flag_metadata
    known = FakeSource(BundleTier.STANDARD, exists=False)
    metadata = client_for(known).get_boolean_details("tactile", False, LAB).flag_metadata
    assert metadata["customer_exists"] is False
