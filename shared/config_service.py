"""CustomerConfigService: how the pipeline reads configuration (docs/config-service.md).

Reads the customer, scene and feature-flag documents, resolves them exactly as
`shared.features` / `shared.scene_config` say, and keeps them in a TTL cache that a streaming
pull on `config-invalidations` keeps fresh. Round trips (one `BatchGetDocuments` RPC each):

- `get_customer_config(c)` / `feature_flags(c)` / `is_feature_enabled(c, f)`, cold: 1
  (`customers/c`, `feature_flags/c`, `feature_flags/_global` together); warm: 0.
- `get_scene_config(s, customer_id=c)` cold: 1 (scene, customer, customer flags, `_global`
  together) whenever the owner is known: passed by the caller, or remembered from an earlier read
  of the scene (a hint that is checked against the scene read). With no owner known at all it
  takes 2, because the owner's id is inside the scene. Warm: 0.

Firestore unavailable (error or deadline `config_read_timeout_seconds`): the answer is built from
the last value read, else from tier defaults, and marked `stale`; one WARNING, one INFO on
recovery; for `config_retry_seconds` after a failure no read is attempted. A JSON file named by
`BLUEPRINT_CONFIG_FILE` overrides documents field by field. Invalid documents are not trusted:
their bad fields take default values and a WARNING names them.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, Final, Generic, ParamSpec, Protocol, TypeVar, overload

from pydantic import BaseModel

from shared import logs, names
from shared.errors import ConfigurationError, FieldError, TransientError
from shared.features import FeatureDecision, Reason, resolve_features
from shared.firestore_values import plain_value
from shared.models import BundleTier, Customer, Feature, FeatureFlags, Scene, document_errors
from shared.scene_config import EffectiveSceneConfig, effective_scene_config
from shared.settings import Settings, get_settings
from shared.tiers import DEFAULT_TIER

DocKey = tuple[str, str]
"""(collection, document id)."""

CUSTOMERS: Final = "customers"
SCENES: Final = "scenes"
FEATURE_FLAGS: Final = "feature_flags"
KINDS: Final = (CUSTOMERS, SCENES, FEATURE_FLAGS)
"""Logical collection kinds; the real collection names come from the settings."""

_MODELS: Final[dict[str, type[BaseModel]]] = {
    CUSTOMERS: Customer,
    SCENES: Scene,
    FEATURE_FLAGS: FeatureFlags,
}
# What a required field that is missing or bad falls back to.
_REQUIRED_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    CUSTOMERS: {"schema_version": 1, "bundle_tier": DEFAULT_TIER.value},
    SCENES: {"schema_version": 1},
    FEATURE_FLAGS: {"schema_version": 1},
}


# ------------------------------------------------------------------------------------------
# Ports


@dataclass(frozen=True, slots=True)
class FetchedDoc:
    """One document as read: its data (None when it does not exist) and update time."""

    data: Mapping[str, Any] | None
    update_time: datetime | None = None


class ConfigReader(Protocol):
    """Reads several documents in ONE round trip."""

    def get_documents(self, keys: Sequence[DocKey], timeout: float) -> dict[DocKey, FetchedDoc]:
        """Every key's document (missing ones with data None); TransientError if unavailable."""
        ...


@dataclass(frozen=True, slots=True)
class Invalidation:
    """One message of `config-invalidations`, decoded."""

    collection: str
    document_id: str
    customer_id: str | None = None
    change: str | None = None
    valid: bool = True
    errors: tuple[str, ...] = ()
    update_time: str | None = None
    event_id: str | None = None


class InvalidationFeed(Protocol):
    """A live stream of invalidations (a streaming pull on its own subscription)."""

    def start(
        self, on_message: Callable[[Invalidation | None], None], on_reset: Callable[[str], None]
    ) -> None:
        """Start delivering; `on_message(None)` for an undecodable message; `on_reset(why)`
        after a stream error (messages may have been missed)."""
        ...

    def close(self) -> None:
        """Stop delivering and delete the subscription."""
        ...


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value not in (None, ""):
            return value
    return None


def parse_invalidation(data: bytes, attributes: Mapping[str, str]) -> Invalidation | None:
    """Decode a message (JSON body, attributes as fallback); None when it names no document."""
    body: dict[str, Any] = {}
    if data:
        try:
            loaded = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            loaded = None
        if isinstance(loaded, dict):
            body = loaded
    merged: dict[str, Any] = {**attributes, **body}
    collection = _first(merged, "collection", "collection_id")
    document = _first(merged, "document_id", "doc_id", "document", "id")
    if isinstance(document, str) and "/" in document:
        # A path: `customers/c1` or `.../documents/customers/c1`.
        parts = document.strip("/").split("/")
        collection, document = collection or parts[-2], parts[-1]
    if not isinstance(collection, str) or not isinstance(document, str):
        return None
    valid = merged.get("valid", True)
    if isinstance(valid, str):
        valid = valid.strip().lower() not in {"false", "0", "no"}
    raw_errors = merged.get("errors") or ()
    if isinstance(raw_errors, str):
        try:
            raw_errors = json.loads(raw_errors)
        except ValueError:
            raw_errors = [raw_errors]
    errors = tuple(
        str(e.get("field", e)) if isinstance(e, Mapping) else str(e) for e in raw_errors or ()
    )
    customer = _first(merged, "customer_id", "customer")
    return Invalidation(
        collection=collection,
        document_id=document,
        customer_id=customer if isinstance(customer, str) else None,
        change=_first(merged, "change_kind", "change", "kind"),
        valid=bool(valid),
        errors=errors,
        update_time=_first(merged, "update_time", "updated_at"),
        event_id=_first(merged, "event_id"),
    )


# ------------------------------------------------------------------------------------------
# Answers


@dataclass(frozen=True, slots=True)
class DocProblem:
    """A field of a stored document that was not trusted, and what was used instead."""

    collection: str
    document_id: str
    error: FieldError

    def __str__(self) -> str:
        return f"{self.collection}/{self.document_id}: {self.error} (default used)"


@dataclass(frozen=True, slots=True)
class CustomerConfig:
    """A customer's configuration and every feature decision, with why."""

    customer_id: str
    customer: Customer
    """The customer document as trusted (defaults for missing or bad fields)."""
    exists: bool
    """False when there is no such customer (defaults of the standard tier apply)."""
    features: Mapping[Feature, FeatureDecision]
    stale: bool = False
    """True when Firestore could not be read: last known values or tier defaults."""
    problems: tuple[DocProblem, ...] = ()
    overridden: tuple[str, ...] = ()
    """Document paths the override file changed."""

    @property
    def tier(self) -> BundleTier:
        """The customer's bundle tier."""
        return self.customer.bundle_tier


@dataclass(frozen=True, slots=True)
class FeatureAnswer:
    """`is_feature_enabled`: truthy when on; says why and whether it may be out of date."""

    feature: Feature
    enabled: bool
    reason: Reason
    tier: BundleTier
    stale: bool = False

    def __bool__(self) -> bool:
        return self.enabled

    def explain(self) -> str:
        """One sentence, e.g. `tactile is off: switched off globally in feature_flags/_global`."""
        text = FeatureDecision(self.feature, self.enabled, self.reason, self.tier).explain()
        return text + (" (stale: Firestore unavailable)" if self.stale else "")


@dataclass(frozen=True, slots=True)
class FeatureFlagSet:
    """Every feature of a customer, each with its decision."""

    customer_id: str
    decisions: Mapping[Feature, FeatureDecision]
    stale: bool = False

    def enabled(self) -> frozenset[Feature]:
        """The features that are on."""
        return frozenset(f for f, d in self.decisions.items() if d.enabled)


@dataclass(frozen=True, slots=True)
class SceneConfig:
    """A scene's effective configuration, with what was clamped."""

    scene_id: str
    exists: bool
    scene: Scene | None
    customer: CustomerConfig | None
    effective: EffectiveSceneConfig
    stale: bool = False
    problems: tuple[DocProblem, ...] = ()
    overridden: tuple[str, ...] = ()

    @property
    def clamped(self) -> tuple[Any, ...]:
        """What the scene asked for that its tier or flags do not allow."""
        return self.effective.clamped


# ------------------------------------------------------------------------------------------
# Override file


def load_override_file(path: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Read the override file: `{"customers": {id: {field: value}}, "scenes": ..., ...}`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(
            f"BLUEPRINT_CONFIG_FILE={str(path)!r}: cannot read: {exc.strerror}"
        ) from None
    except ValueError as exc:
        raise ConfigurationError(f"BLUEPRINT_CONFIG_FILE={str(path)!r}: not JSON: {exc}") from None
    return check_overrides(data, f"BLUEPRINT_CONFIG_FILE={str(path)!r}")


def check_overrides(data: Any, origin: str = "overrides") -> dict[str, dict[str, dict[str, Any]]]:
    """Check the shape `{collection: {document id: {field: value}}}` of an override mapping."""
    if not isinstance(data, dict):
        raise ConfigurationError(f"{origin}: expected a JSON object of collections")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for collection, docs in data.items():
        if collection.startswith("_"):
            continue  # `_comment` and friends
        if collection not in KINDS:
            raise ConfigurationError(
                f"{origin}: unknown collection {collection!r}; expected one of {list(KINDS)}"
            )
        if not isinstance(docs, dict) or not all(isinstance(d, dict) for d in docs.values()):
            raise ConfigurationError(
                f"{origin}: {collection} must map document ids to objects of fields"
            )
        out[collection] = {str(k): dict(v) for k, v in docs.items()}
    return out


def _apply_override(
    data: Mapping[str, Any] | None, override: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    if override is None:
        return data
    merged = dict(data or {})
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)  # null in the file removes the field
        else:
            merged[key] = value
    return merged


# ------------------------------------------------------------------------------------------
# Trusting documents


def salvage(
    kind: str, data: Mapping[str, Any], distrust: Sequence[str] = ()
) -> tuple[BaseModel | None, list[FieldError]]:
    """Validate a document; replace bad top-level fields by their defaults (drop or required
    default) and list them. None when even that does not give a valid document."""
    model = _MODELS[kind]
    required = _REQUIRED_DEFAULTS[kind]
    clean = dict(data)
    problems: list[FieldError] = []
    for name in distrust:
        top = name.split(".")[0]
        if top in clean:
            problems.append(FieldError(top, clean[top], "marked invalid by the writer's trigger"))
            clean.pop(top)
    for _ in range(4):
        errors = document_errors(model, clean)
        if not errors:
            return model.model_validate(clean), problems
        problems.extend(errors)
        for err in errors:
            top = err.field.split(".")[0]
            if top == "(document)":
                # The only document-level rule is contract_end >= contract_start.
                top = "contract_end"
            if top in required:
                clean[top] = required[top]
            elif top in clean:
                clean.pop(top)
            else:
                return None, problems
    return None, problems


# ------------------------------------------------------------------------------------------
# The cache


@dataclass(frozen=True, slots=True)
class _Doc:
    kind: str
    doc_id: str
    model: BaseModel | None
    exists: bool
    fetched_at: float
    stale: bool = False
    problems: tuple[DocProblem, ...] = ()
    overridden: bool = False
    update_time: datetime | None = None


P = ParamSpec("P")
R = TypeVar("R")

_INSTANCES: weakref.WeakSet[CustomerConfigService] = weakref.WeakSet()


class _BoundLookup(Generic[P, R]):
    """A lookup bound to a service; `cache_clear()` empties that service's cache."""

    def __init__(self, func: Callable[P, R], clear: Callable[[], None]) -> None:
        self._func = func
        self.cache_clear = clear
        self.__doc__ = func.__doc__

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._func(*args, **kwargs)


class _ClassLookup:
    """`CustomerConfigService.get_customer_config.cache_clear()`: clears every live service."""

    def cache_clear(self) -> None:
        """Empty the cache of every CustomerConfigService in this process."""
        for service in list(_INSTANCES):
            service.cache_clear()


class _CachedLookup(Generic[P, R]):
    """Descriptor giving a method the `cache_clear()` attribute `schema.md` spells."""

    def __init__(self, func: Callable[Concatenate[Any, P], R]) -> None:
        self._func = func
        self.__doc__ = func.__doc__

    @overload
    def __get__(self, obj: None, owner: type) -> _ClassLookup: ...

    @overload
    def __get__(self, obj: CustomerConfigService, owner: type) -> _BoundLookup[P, R]: ...

    def __get__(
        self, obj: CustomerConfigService | None, owner: type
    ) -> _ClassLookup | _BoundLookup[P, R]:
        if obj is None:
            return _ClassLookup()
        return _BoundLookup(functools.partial(self._func, obj), obj.cache_clear)


class CustomerConfigService:
    """Cached, live-invalidated reads of customer, scene and feature configuration."""

    def __init__(
        self,
        reader: ConfigReader | None = None,
        feed: InvalidationFeed | None = None,
        *,
        live: bool = True,
        settings: Settings | None = None,
        ttl_seconds: float | None = None,
        timeout_seconds: float | None = None,
        retry_seconds: float | None = None,
        overrides: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings or get_settings()
        self._reader = reader
        self._feed = feed
        self._live = live
        self._ttl = self._settings.config_cache_ttl_seconds if ttl_seconds is None else ttl_seconds
        self._timeout = timeout_seconds or self._settings.config_read_timeout_seconds
        self._retry = (
            self._settings.config_retry_seconds if retry_seconds is None else retry_seconds
        )
        self._clock = clock
        if overrides is not None:
            self._overrides = check_overrides(dict(overrides))
        elif self._settings.config_override_file:
            self._overrides = load_override_file(self._settings.config_override_file)
        else:
            self._overrides = {}
        self._collections = {
            CUSTOMERS: self._settings.customers_collection,
            SCENES: self._settings.scenes_collection,
            FEATURE_FLAGS: self._settings.feature_flags_collection,
        }
        self._kind_of = {name: kind for kind, name in self._collections.items()}
        self._lock = threading.RLock()
        self._docs: dict[DocKey, _Doc] = {}
        self._generation: dict[DocKey, int] = {}
        self._epoch = 0
        self._scene_owner: dict[str, str] = {}
        self._marks: dict[DocKey, tuple[str, ...]] = {}
        self._down = False
        self._retry_at = 0.0
        self._feed_state = "off" if not live else "idle"
        self._feed_retry_at = 0.0
        self._closed = False
        self.stats = {"round_trips": 0, "invalidations": 0, "resets": 0, "fallbacks": 0}
        _INSTANCES.add(self)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> CustomerConfigService:
        """Open the invalidation stream now (otherwise on first read)."""
        self._ensure_feed()
        return self

    def close(self) -> None:
        """Stop the stream and delete its subscription; idempotent."""
        with self._lock:
            self._closed = True
            feed, state = self._feed, self._feed_state
            self._feed_state = "off"
        if feed is not None and state == "running":
            feed.close()

    def __enter__(self) -> CustomerConfigService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cache_clear(self) -> None:
        """Forget every cached document (the next read of each goes to Firestore)."""
        with self._lock:
            self._docs.clear()
            self._epoch += 1

    @property
    def live(self) -> bool:
        """True while the invalidation stream runs."""
        return self._feed_state == "running"

    def _ensure_feed(self) -> None:
        with self._lock:
            if self._feed_state not in ("idle", "failed") or self._closed:
                return
            if self._feed_state == "failed" and self._clock() < self._feed_retry_at:
                return
            self._feed_state = "starting"
        try:
            if self._feed is None:
                from shared.config_adapters import PubSubInvalidationFeed  # noqa: PLC0415

                self._feed = PubSubInvalidationFeed(self._settings)
            self._feed.start(self._on_invalidation, self._on_reset)
        except Exception as exc:
            with self._lock:
                self._feed_state = "failed"
                self._feed_retry_at = self._clock() + max(self._retry, 30.0)
            logs.warning(
                f"config invalidation stream not started ({exc!r}); cache relies on its TTL",
                component="config_service",
            )
            return
        with self._lock:
            self._feed_state = "running"
            # Anything cached before the stream existed may have missed a change.
            self._docs.clear()
            self._epoch += 1

    # -- invalidation -----------------------------------------------------------------------

    def _on_invalidation(self, message: Invalidation | None) -> None:
        if message is None:
            self._on_reset("undecodable invalidation message")
            return
        kind = self._kind_of.get(message.collection, message.collection)
        if kind not in KINDS:
            return  # not a configuration document
        key = (kind, message.document_id)
        with self._lock:
            self.stats["invalidations"] += 1
            self._docs.pop(key, None)
            self._generation[key] = self._generation.get(key, 0) + 1
            if message.valid:
                self._marks.pop(key, None)
            else:
                self._marks[key] = message.errors

    def _on_reset(self, why: str) -> None:
        with self._lock:
            self.stats["resets"] += 1
        self.cache_clear()
        logs.warning(
            f"config cache dropped: {why} (changes may have been missed)",
            component="config_service",
        )

    # -- loading ----------------------------------------------------------------------------

    def _read(self, keys: Sequence[DocKey], timeout: float) -> dict[DocKey, FetchedDoc]:
        if self._reader is None:
            from shared.config_adapters import FirestoreConfigReader  # noqa: PLC0415

            self._reader = FirestoreConfigReader(self._settings)
        real = [(self._collections[k], d) for k, d in keys]
        got = self._reader.get_documents(real, timeout)
        return {key: got.get(r, FetchedDoc(None)) for key, r in zip(keys, real, strict=True)}

    def _load(self, keys: Sequence[DocKey]) -> dict[DocKey, _Doc]:
        """The documents for `keys`: cached if fresh, else ONE read of all the others."""
        self._ensure_feed()
        now = self._clock()
        out: dict[DocKey, _Doc] = {}
        missing: list[DocKey] = []
        with self._lock:
            for key in dict.fromkeys(keys):
                doc = self._docs.get(key)
                if doc is not None and not doc.stale and now - doc.fetched_at < self._ttl:
                    out[key] = doc
                else:
                    missing.append(key)
            if not missing:
                return out
            epoch = self._epoch
            generations = {k: self._generation.get(k, 0) for k in missing}
            try_read = now >= self._retry_at
        if try_read:
            try:
                with self._lock:
                    self.stats["round_trips"] += 1
                fetched = self._read(missing, self._timeout)
            except TransientError as exc:
                self._went_down(exc)
            else:
                self._came_up()
                with self._lock:
                    for key in missing:
                        doc = self._build(key, fetched[key], now)
                        out[key] = doc
                        if (
                            self._epoch == epoch
                            and self._generation.get(key, 0) == generations[key]
                        ):
                            self._docs[key] = doc
                return out
        with self._lock:
            self.stats["fallbacks"] += 1
            for key in missing:
                last = self._docs.get(key)
                out[key] = (
                    replace(last, stale=True)
                    if last is not None
                    else replace(self._build(key, FetchedDoc(None), now), stale=True)
                )
        return out

    def _went_down(self, exc: Exception) -> None:
        with self._lock:
            self._retry_at = self._clock() + self._retry
            first = not self._down
            self._down = True
        if first:
            logs.warning(
                f"Firestore unavailable ({type(exc).__name__}): serving last known values or "
                "tier defaults, marked stale",
                component="config_service",
            )

    def _came_up(self) -> None:
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            logs.info("Firestore reachable again: fresh configuration", component="config_service")

    def _build(self, key: DocKey, fetched: FetchedDoc, now: float) -> _Doc:
        kind, doc_id = key
        override = self._overrides.get(kind, {}).get(doc_id)
        data = _apply_override(
            plain_value(fetched.data) if fetched.data is not None else None, override
        )
        if data is None:
            return _Doc(kind, doc_id, None, False, now, update_time=fetched.update_time)
        model, errors = salvage(kind, data, self._marks.get(key, ()))
        problems = tuple(DocProblem(self._collections[kind], doc_id, e) for e in errors)
        if problems:
            logs.warning(
                f"untrusted fields in {self._collections[kind]}/{doc_id}: "
                + "; ".join(str(p.error) for p in problems)
                + ("; defaults used" if model is not None else "; whole document ignored"),
                collection=self._collections[kind],
                document=doc_id,
                errors=[p.error.as_dict() for p in problems],
                component="config_service",
            )
        return _Doc(
            kind,
            doc_id,
            model,
            exists=model is not None,
            fetched_at=now,
            problems=problems,
            overridden=override is not None,
            update_time=fetched.update_time,
        )

    # -- answers ----------------------------------------------------------------------------

    def _customer_keys(self, customer_id: str) -> list[DocKey]:
        return [
            (CUSTOMERS, customer_id),
            (FEATURE_FLAGS, customer_id),
            (FEATURE_FLAGS, names.GLOBAL_FLAGS_DOC),
        ]

    def _customer_answer(self, customer_id: str, docs: Mapping[DocKey, _Doc]) -> CustomerConfig:
        cust, flags, glob = (docs[k] for k in self._customer_keys(customer_id))
        customer = cust.model if isinstance(cust.model, Customer) else None
        if customer is None:
            customer = Customer(schema_version=1, bundle_tier=DEFAULT_TIER)
        features = resolve_features(
            customer.bundle_tier,
            flags.model if isinstance(flags.model, FeatureFlags) else None,
            customer.feature_overrides,
            glob.model if isinstance(glob.model, FeatureFlags) else None,
        )
        used = (cust, flags, glob)
        return CustomerConfig(
            customer_id=customer_id,
            customer=customer,
            exists=cust.exists,
            features=features,
            stale=any(d.stale for d in used),
            problems=tuple(p for d in used for p in d.problems),
            overridden=tuple(
                f"{self._collections[d.kind]}/{d.doc_id}" for d in used if d.overridden
            ),
        )

    @_CachedLookup
    def get_customer_config(self, customer_id: str) -> CustomerConfig:
        """The customer's configuration with every feature decision (cold: 1 round trip)."""
        return self._customer_answer(customer_id, self._load(self._customer_keys(customer_id)))

    def feature_flags(self, customer_id: str) -> FeatureFlagSet:
        """Every feature of the customer, each with its reason."""
        config = self.get_customer_config(customer_id)
        return FeatureFlagSet(customer_id, config.features, config.stale)

    def is_feature_enabled(self, customer_id: str, feature: Feature | str) -> FeatureAnswer:
        """Whether `feature` is on for the customer (truthy answer), with its reason."""
        feature = Feature(feature)
        config = self.get_customer_config(customer_id)
        decision = config.features[feature]
        return FeatureAnswer(
            feature, decision.enabled, decision.reason, decision.tier, stale=config.stale
        )

    @_CachedLookup
    def get_scene_config(self, scene_id: str, customer_id: str | None = None) -> SceneConfig:
        """The scene's effective config with clamps. Cold: 1 round trip when the owner is
        known (`customer_id`, or remembered from an earlier read), else 2; warm: 0."""
        scene_key = (SCENES, scene_id)
        with self._lock:
            owner = customer_id or self._scene_owner.get(scene_id)
        keys = [scene_key, (FEATURE_FLAGS, names.GLOBAL_FLAGS_DOC)]
        if owner:
            keys += self._customer_keys(owner)
        docs = self._load(keys)
        scene_doc = docs[scene_key]
        scene = scene_doc.model if isinstance(scene_doc.model, Scene) else None
        actual = scene.customer_id if scene is not None else owner
        if actual is not None:
            if actual != owner:
                docs.update(self._load(self._customer_keys(actual)))
            if scene is not None:
                with self._lock:
                    self._scene_owner[scene_id] = actual
        customer = self._customer_answer(actual, docs) if actual is not None else None
        effective = effective_scene_config(
            scene,
            customer.customer if customer is not None and customer.exists else None,
            _flags_model(docs.get((FEATURE_FLAGS, actual))) if actual else None,
            _flags_model(docs[(FEATURE_FLAGS, names.GLOBAL_FLAGS_DOC)]),
        )
        stale = scene_doc.stale or (customer.stale if customer else False)
        problems = scene_doc.problems + (customer.problems if customer else ())
        overridden = (
            (f"{self._collections[SCENES]}/{scene_id}",) if scene_doc.overridden else ()
        ) + (customer.overridden if customer else ())
        return SceneConfig(
            scene_id=scene_id,
            exists=scene_doc.exists,
            scene=scene,
            customer=customer,
            effective=effective,
            stale=stale,
            problems=problems,
            overridden=overridden,
        )


def _flags_model(doc: _Doc | None) -> FeatureFlags | None:
    if doc is None or not isinstance(doc.model, FeatureFlags):
        return None
    return doc.model


__all__ = [
    "ConfigReader",
    "CustomerConfig",
    "CustomerConfigService",
    "DocProblem",
    "FeatureAnswer",
    "FeatureFlagSet",
    "FetchedDoc",
    "Invalidation",
    "InvalidationFeed",
    "SceneConfig",
    "load_override_file",
    "parse_invalidation",
    "salvage",
]
