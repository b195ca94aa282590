"""The effective configuration of a scene: scene field, else customer, else the tier table.

The tier is the scene's `bundle_tier` if set, else the customer's, else `standard`. A scene cannot
unlock what its tier and flags do not include: such values are clamped, and the result lists
every clamp (field, what was asked, what is allowed, why).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.features import FeatureDecision, resolve_features
from shared.models import BundleTier, Customer, DataPackTier, Feature, FeatureFlags, Scene
from shared.tiers import DEFAULT_TIER, TierSpec, tier_spec

Source = Literal["scene", "customer", "tier", "default"]

# Scene booleans and the feature that gates each.
GATED_BOOLEANS: Mapping[str, Feature] = {
    "audio_narration_enabled": Feature.AUDIO_NARRATION,
    "subtitle_generation_enabled": Feature.SUBTITLE_GENERATION,
    "sim2real_enabled": Feature.SIM2REAL,
    "contact_rich_enabled": Feature.CONTACT_RICH,
    "tactile_enabled": Feature.TACTILE,
}
# Booleans a customer document may also set (its preference), between scene and tier.
_CUSTOMER_PREFERENCES = frozenset({"audio_narration_enabled", "subtitle_generation_enabled"})


@dataclass(frozen=True, slots=True)
class Clamp:
    """One value a scene asked for that its tier or flags do not allow."""

    field: str
    requested: Any
    allowed: Any
    reason: str


@dataclass(frozen=True, slots=True)
class EffectiveSceneConfig:
    """What the pipeline should actually generate for a scene."""

    customer_id: str | None
    bundle_tier: BundleTier
    tier_source: Source
    data_pack_tier: DataPackTier
    episodes_per_variation: int
    max_variations: int
    min_quality_score: float
    vla_models: tuple[str, ...]
    num_language_variations: int
    audio_narration_enabled: bool
    subtitle_generation_enabled: bool
    sim2real_enabled: bool
    contact_rich_enabled: bool
    tactile_enabled: bool
    robot_type: str | None
    custom_settings: Mapping[str, Any]
    features: Mapping[Feature, FeatureDecision]
    clamped: tuple[Clamp, ...] = ()
    sources: Mapping[str, Source] = field(default_factory=dict)


def effective_tier(scene: Scene | None, customer: Customer | None) -> tuple[BundleTier, Source]:
    """The tier that applies to a scene, and where it came from."""
    if scene is not None and scene.bundle_tier is not None:
        return scene.bundle_tier, "scene"
    if customer is not None:
        return customer.bundle_tier, "customer"
    return DEFAULT_TIER, "default"


def effective_scene_config(
    scene: Scene | None,
    customer: Customer | None,
    customer_flags: FeatureFlags | None = None,
    global_flags: FeatureFlags | None = None,
) -> EffectiveSceneConfig:
    """Resolve a scene's effective config with clamping. Pure: no I/O, no logging."""
    tier, tier_source = effective_tier(scene, customer)
    spec = tier_spec(tier)
    overrides = customer.feature_overrides if customer is not None else None
    features = resolve_features(tier, customer_flags, overrides, global_flags)
    clamps: list[Clamp] = []
    sources: dict[str, Source] = {}

    def pick(name: str, tier_value: Any, from_customer: bool = False) -> Any:
        value = getattr(scene, name, None) if scene is not None else None
        if value is not None:
            sources[name] = "scene"
            return value
        if from_customer and customer is not None and getattr(customer, name) is not None:
            sources[name] = "customer"
            return getattr(customer, name)
        sources[name] = "tier"
        return tier_value

    data_pack = pick("data_pack_tier", spec.data_pack)
    if data_pack.rank > spec.data_pack.rank:
        clamps.append(
            Clamp(
                "data_pack_tier",
                data_pack.value,
                spec.data_pack.value,
                f"tier {tier.value} includes data packs up to {spec.data_pack.value}",
            )
        )
        data_pack = spec.data_pack

    max_variations = _cap(
        pick("max_variations", spec.max_variations),
        spec.max_variations,
        "max_variations",
        tier,
        clamps,
    )
    languages = _cap(
        pick("num_language_variations", spec.language_variations),
        spec.language_variations,
        "num_language_variations",
        tier,
        clamps,
    )
    vla_default = list(spec.vla_models) if features[Feature.VLA_FINETUNING].enabled else []
    vla_models = _vla_models(pick("vla_models", vla_default), spec, features, clamps)

    booleans: dict[str, bool] = {}
    for name, feature in GATED_BOOLEANS.items():
        decision = features[feature]
        wanted = bool(pick(name, decision.enabled, from_customer=name in _CUSTOMER_PREFERENCES))
        if wanted and not decision.enabled:
            clamps.append(Clamp(name, True, False, decision.explain()))
            wanted = False
        booleans[name] = wanted

    return EffectiveSceneConfig(
        customer_id=scene.customer_id if scene is not None else None,
        bundle_tier=tier,
        tier_source=tier_source,
        data_pack_tier=data_pack,
        episodes_per_variation=pick("episodes_per_variation", spec.episodes_per_variation),
        max_variations=max_variations,
        min_quality_score=pick("min_quality_score", spec.min_quality_score),
        vla_models=vla_models,
        num_language_variations=languages,
        robot_type=scene.robot_type if scene is not None else None,
        custom_settings=dict(scene.custom_settings or {}) if scene is not None else {},
        features=features,
        clamped=tuple(clamps),
        sources=sources,
        **booleans,
    )


def _cap(value: int, limit: int, name: str, tier: BundleTier, clamps: list[Clamp]) -> int:
    if value > limit:
        clamps.append(Clamp(name, value, limit, f"tier {tier.value} allows at most {limit}"))
        return limit
    return value


def _vla_models(
    requested: list[str],
    spec: TierSpec,
    features: Mapping[Feature, FeatureDecision],
    clamps: list[Clamp],
) -> tuple[str, ...]:
    decision = features[Feature.VLA_FINETUNING]
    allowed = spec.vla_models if decision.enabled else ()
    kept = tuple(dict.fromkeys(m for m in requested if m in allowed))
    dropped = [m for m in requested if m not in allowed]
    if dropped:
        why = (
            f"tier {spec.tier.value} includes {list(spec.vla_models) or 'no VLA models'}"
            if decision.enabled
            else decision.explain()
        )
        clamps.append(Clamp("vla_models", list(requested), list(kept), why))
    return kept
