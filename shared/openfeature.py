"""OpenFeature provider over CustomerConfigService: boolean features, reasons mapped.

    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from shared.openfeature import BlueprintProvider

    api.set_provider_and_wait(BlueprintProvider())
    details = api.get_client().get_boolean_details(
        "tactile", False, EvaluationContext(targeting_key="lab_001")
    )
    details.value, details.reason, details.flag_metadata["explanation"]

Flag key = a feature name (`shared.features.Feature`), targeting key = the customer id. Reasons:
tier default -> DEFAULT; customer flag, override or any other customer-specific layer (a
rollout) -> TARGETING_MATCH; `feature_flags/_global` kill switch -> DISABLED; an answer built
while Firestore is unavailable -> STALE. Errors return the caller's default with an OpenFeature
error code: FLAG_NOT_FOUND, TARGETING_KEY_MISSING, INVALID_CONTEXT, TYPE_MISMATCH (every
feature is boolean), GENERAL. Our own reason, tier and explanation are in `flag_metadata`.
See docs/openfeature.md.

Optional: needs the `openfeature` extra (openfeature-sdk). Nothing deployed imports this module.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Final, Literal, Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError

try:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.exception import ErrorCode
    from openfeature.flag_evaluation import FlagMetadata, FlagResolutionDetails, FlagValueType
    from openfeature.flag_evaluation import Reason as OpenFeatureReason
    from openfeature.provider import AbstractProvider, Metadata
except ModuleNotFoundError as exc:  # pragma: no cover - tested in a subprocess
    if (exc.name or "").partition(".")[0] != "openfeature":
        raise
    raise ImportError(
        "shared.openfeature needs the OpenFeature SDK, an optional extra: install it with "
        "`pip install 'blueprint-firestore-functions[openfeature]'` "
        "(or `pip install openfeature-sdk==0.10.0`)",
        name="openfeature",
    ) from exc

from shared import logs, names
from shared.config_service import CustomerConfig, CustomerConfigService
from shared.features import FeatureDecision, Reason
from shared.models import Feature
from shared.types import DocumentId

PROVIDER_NAME: Final = "blueprint"
"""`get_metadata().name`."""

UnknownCustomer = Literal["default", "error"]

_REASONS: Final[Mapping[str, OpenFeatureReason]] = {
    Reason.TIER_DEFAULT.value: OpenFeatureReason.DEFAULT,
    Reason.GLOBAL_KILL_SWITCH.value: OpenFeatureReason.DISABLED,
}
"""Our reasons that are not TARGETING_MATCH. Every other one (customer flag, override, a
rollout) is a layer chosen for this customer, so it is a targeting match."""

_CUSTOMER_ID: Final = TypeAdapter(DocumentId)
_T = TypeVar("_T")


class ConfigSource(Protocol):
    """What the provider needs of CustomerConfigService (tests pass a fake)."""

    def get_customer_config(self, customer_id: str) -> CustomerConfig:
        """The customer's configuration with every feature decision."""
        ...


def openfeature_reason(decision: FeatureDecision, *, stale: bool) -> OpenFeatureReason:
    """The OpenFeature reason of one of our decisions (STALE first: it may be out of date)."""
    if stale:
        return OpenFeatureReason.STALE
    return _REASONS.get(decision.reason.value, OpenFeatureReason.TARGETING_MATCH)


class BlueprintProvider(AbstractProvider):
    """OpenFeature provider answering boolean features from CustomerConfigService.

    `service`: the CustomerConfigService to ask (yours: you start and close it). Without one the
    provider creates its own on `initialize` (or first use) and closes it on `shutdown`.
    `unknown_customer`: a targeting key naming no `customers` document gets the standard tier's
    defaults, as the service answers it ("default", reason DEFAULT, `customer_exists` False in
    the metadata), or the caller's default with INVALID_CONTEXT ("error").
    """

    def __init__(
        self,
        service: ConfigSource | None = None,
        *,
        unknown_customer: UnknownCustomer = "default",
    ) -> None:
        super().__init__()
        if unknown_customer not in ("default", "error"):
            raise ValueError(
                f"unknown_customer={unknown_customer!r}: expected 'default' or 'error'"
            )
        self._service = service
        self._own: CustomerConfigService | None = None
        self._unknown_customer = unknown_customer
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------

    def get_metadata(self) -> Metadata:
        """The provider's name, `blueprint`."""
        return Metadata(name=PROVIDER_NAME)

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Create (and start: open the invalidation stream) the provider's own service."""
        self._source()

    def shutdown(self) -> None:
        """Close the service the provider created (a service passed in stays open)."""
        with self._lock:
            own, self._own = self._own, None
            if own is not None:
                self._service = None
        if own is not None:
            own.close()

    def _source(self) -> ConfigSource:
        with self._lock:
            if self._service is None:
                # Pub/Sub down is not an error here: the service then runs on its TTL alone.
                self._own = self._service = CustomerConfigService().start()
            return self._service

    # -- resolution -----------------------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """Whether feature `flag_key` is on for the customer named by the targeting key."""
        feature = _feature(flag_key)
        if feature is None:
            return _error(default_value, ErrorCode.FLAG_NOT_FOUND, _not_found(flag_key))
        customer_id = evaluation_context.targeting_key if evaluation_context else None
        if not customer_id:
            return _error(
                default_value,
                ErrorCode.TARGETING_KEY_MISSING,
                f"{flag_key}: the targeting key must be the customer id (e.g. 'lab_001')",
            )
        problem = _bad_customer_id(customer_id)
        if problem is not None:
            return _error(
                default_value,
                ErrorCode.INVALID_CONTEXT,
                f"{flag_key}: targeting key {customer_id!r} is not a customer id: {problem}",
            )
        try:
            config = self._source().get_customer_config(customer_id)
            decision = config.features[feature]
        except Exception as exc:
            # The service answers from defaults when Firestore is down, so this is a bug or a
            # broken setup: say so once in the log, and let the caller carry on with its default.
            message = f"{flag_key} for {customer_id!r}: {type(exc).__name__}: {exc}"
            logs.warning(f"OpenFeature provider failed: {message}", customer=customer_id)
            return _error(default_value, ErrorCode.GENERAL, message)
        if not config.exists and not config.stale and self._unknown_customer == "error":
            return _error(
                default_value,
                ErrorCode.INVALID_CONTEXT,
                f"{flag_key}: no customer {customer_id!r} (no customers/{customer_id} document)",
            )
        return FlagResolutionDetails(
            value=decision.enabled,
            reason=openfeature_reason(decision, stale=config.stale),
            variant="on" if decision.enabled else "off",
            flag_metadata=_metadata(decision, config),
        )

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        """Every feature is boolean: TYPE_MISMATCH (FLAG_NOT_FOUND for an unknown key)."""
        return _not_boolean(flag_key, default_value, "string")

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        """Every feature is boolean: TYPE_MISMATCH (FLAG_NOT_FOUND for an unknown key)."""
        return _not_boolean(flag_key, default_value, "integer")

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """Every feature is boolean: TYPE_MISMATCH (FLAG_NOT_FOUND for an unknown key)."""
        return _not_boolean(flag_key, default_value, "float")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        """Every feature is boolean: TYPE_MISMATCH (FLAG_NOT_FOUND for an unknown key)."""
        return _not_boolean(flag_key, default_value, "object")


def _feature(flag_key: str) -> Feature | None:
    try:
        return Feature(flag_key)
    except ValueError:
        return None


def _not_found(flag_key: str) -> str:
    known = ", ".join(f.value for f in Feature)
    return f"no feature {flag_key!r}; the features are: {known}"


def _bad_customer_id(customer_id: str) -> str | None:
    if customer_id == names.GLOBAL_FLAGS_DOC:
        return f"{names.GLOBAL_FLAGS_DOC} is the global kill-switch document"
    try:
        _CUSTOMER_ID.validate_python(customer_id)
    except ValidationError as exc:
        return "; ".join(str(e["msg"]) for e in exc.errors())
    return None


def _metadata(decision: FeatureDecision, config: CustomerConfig) -> FlagMetadata:
    explanation = decision.explain()
    if config.stale:
        explanation += " (stale: Firestore unavailable)"
    metadata: dict[str, bool | int | float | str] = {
        "reason": decision.reason.value,
        "explanation": explanation,
        "tier": decision.tier.value,
        "stale": config.stale,
    }
    if config.exists or not config.stale:  # unread while Firestore is down: not known missing
        metadata["customer_exists"] = config.exists
    return metadata


def _error(default_value: _T, code: ErrorCode, message: str) -> FlagResolutionDetails[_T]:
    return FlagResolutionDetails(
        value=default_value,
        reason=OpenFeatureReason.ERROR,
        error_code=code,
        error_message=message,
    )


def _not_boolean(flag_key: str, default_value: _T, kind: str) -> FlagResolutionDetails[_T]:
    if _feature(flag_key) is None:
        return _error(default_value, ErrorCode.FLAG_NOT_FOUND, _not_found(flag_key))
    return _error(
        default_value,
        ErrorCode.TYPE_MISMATCH,
        f"{flag_key} is a boolean feature, asked as {kind}: use get_boolean_details",
    )


__all__ = ["PROVIDER_NAME", "BlueprintProvider", "ConfigSource", "openfeature_reason"]
