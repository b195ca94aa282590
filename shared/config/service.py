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

This module composes answers and owns the stream's lifecycle; `cache` fetches and keeps the
documents, `salvage` decides what of them to trust, `adapters` does the I/O behind `ports`.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, Final, Generic, ParamSpec, TypeVar, overload

from shared import logs, names
from shared.config.answers import (
    CustomerConfig,
    FeatureAnswer,
    FeatureFlagSet,
    SceneConfig,
)
from shared.config.cache import CachedDoc, ConfigCache
from shared.config.overrides import check_overrides, load_override_file
from shared.config.ports import KINDS, ConfigReader, DocKey, Invalidation, InvalidationFeed
from shared.features import resolve_features
from shared.models import Customer, Feature, FeatureFlags, Scene
from shared.scene_config import effective_scene_config
from shared.settings import Settings, get_settings
from shared.tiers import DEFAULT_TIER
from shared.times import parse_rfc3339

CUSTOMERS: Final = names.CUSTOMERS
SCENES: Final = names.SCENES
FEATURE_FLAGS: Final = names.FEATURE_FLAGS

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
    """Descriptor giving a method the `cache_clear()` attribute the specification spells."""

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
        self._feed = feed
        self._retry = (
            self._settings.config_retry_seconds if retry_seconds is None else retry_seconds
        )
        self._clock = clock
        if overrides is not None:
            checked = check_overrides(dict(overrides))
        elif self._settings.config_override_file:
            checked = load_override_file(self._settings.config_override_file)
        else:
            checked = {}
        self._collections = {
            CUSTOMERS: self._settings.customers_collection,
            SCENES: self._settings.scenes_collection,
            FEATURE_FLAGS: self._settings.feature_flags_collection,
        }
        self._kind_of = {name: kind for kind, name in self._collections.items()}
        self._cache = ConfigCache(
            self._settings,
            reader,
            self._collections,
            checked,
            ttl=self._settings.config_cache_ttl_seconds if ttl_seconds is None else ttl_seconds,
            timeout=timeout_seconds or self._settings.config_read_timeout_seconds,
            retry=self._retry,
            clock=clock,
        )
        self._lock = threading.Lock()
        self._scene_owner: dict[str, str] = {}
        self._feed_state = "off" if not live else "idle"
        self._feed_retry_at = 0.0
        self._closed = False
        _INSTANCES.add(self)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: `round_trips`, `invalidations`, `resets` (cache drops), `fallbacks`."""
        return self._cache.stats

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
        self._cache.clear()

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
                # The default adapter, built on first use: import of the service stays cheap.
                from shared.config.adapters import PubSubInvalidationFeed  # noqa: PLC0415

                self._feed = PubSubInvalidationFeed(self._settings)
            self._feed.start(self._on_invalidation, self._cache.reset)
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
        self._cache.clear()

    def _on_invalidation(self, message: Invalidation | None) -> None:
        if message is None:
            self._cache.reset("undecodable invalidation message")
            return
        kind = self._kind_of.get(message.collection, message.collection)
        if kind not in KINDS:
            return  # not a configuration document
        distrust = None if message.valid else message.error_fields
        version = parse_rfc3339(message.update_time) if message.update_time else None
        self._cache.invalidate((kind, message.document_id), distrust, version)

    def _load(self, keys: list[DocKey]) -> dict[DocKey, CachedDoc]:
        self._ensure_feed()
        return self._cache.load(keys)

    # -- answers ----------------------------------------------------------------------------

    def _customer_keys(self, customer_id: str) -> list[DocKey]:
        return [
            (CUSTOMERS, customer_id),
            (FEATURE_FLAGS, customer_id),
            (FEATURE_FLAGS, names.GLOBAL_FLAGS_DOC),
        ]

    def _customer_answer(
        self, customer_id: str, docs: Mapping[DocKey, CachedDoc]
    ) -> CustomerConfig:
        cust, flags, glob = (docs[k] for k in self._customer_keys(customer_id))
        customer = cust.model if isinstance(cust.model, Customer) else None
        if customer is None:
            customer = Customer(schema_version=1, bundle_tier=DEFAULT_TIER)
        # `_global` is no customer's flags: a customer id `_global` must not read it as its own
        # (it may only switch features off).
        own = _flags_model(flags) if customer_id != names.GLOBAL_FLAGS_DOC else None
        features = resolve_features(
            customer.bundle_tier,
            own,
            customer.feature_overrides,
            _global_flags(glob),
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
            _global_flags(docs[(FEATURE_FLAGS, names.GLOBAL_FLAGS_DOC)]),
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


def _flags_model(doc: CachedDoc | None) -> FeatureFlags | None:
    if doc is None or not isinstance(doc.model, FeatureFlags):
        return None
    return doc.model


_FEATURE_NAMES: Final = frozenset(f.value for f in Feature)


def _global_flags(doc: CachedDoc) -> FeatureFlags | None:
    """`_global` as a kill switch that fails safe: a feature whose value was refused (not a
    boolean, such as "false" or 0; the trigger logs it as an ERROR) is switched off."""
    model = _flags_model(doc)
    unreadable = {p.error.field for p in doc.problems} & _FEATURE_NAMES
    if not unreadable:
        return model
    base = model or FeatureFlags(schema_version=1)
    return base.model_copy(update=dict.fromkeys(unreadable, False))


__all__ = ["CustomerConfigService"]
