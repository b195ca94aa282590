"""What CustomerConfigService answers: a customer's config, a scene's, feature decisions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import FieldError
from shared.features import FeatureDecision, Reason
from shared.models import BundleTier, Customer, Feature, Scene
from shared.scene_config import EffectiveSceneConfig


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


__all__ = ["CustomerConfig", "DocProblem", "FeatureAnswer", "FeatureFlagSet", "SceneConfig"]
