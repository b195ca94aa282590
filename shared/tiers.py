"""The bundle tier table (the specification's "Bundle Tier Specifications") as data.

Where the specification's table is silent (features other than audio, subtitles, sim2real,
contact-rich, tactile), the entitlements below are this project's decision; see docs/decisions.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from shared.models import BundleTier, DataPackTier, Feature

KNOWN_VLA_MODELS: Final[tuple[str, ...]] = ("openvla", "pi0", "smolvla", "groot")
"""Every VLA model the suite knows; the foundation tier's "all" means exactly these."""


@dataclass(frozen=True, slots=True)
class TierSpec:
    """What one tier provides: scene defaults and entitlements."""

    tier: BundleTier
    data_pack: DataPackTier
    episodes_per_variation: int
    max_variations: int
    min_quality_score: float
    vla_models: tuple[str, ...]
    language_variations: int
    features: frozenset[Feature]
    """Features on by default for this tier (the tier's entitlement before flags)."""

    def has(self, feature: Feature) -> bool:
        """Whether the tier turns this feature on by default."""
        return feature in self.features


_F = Feature
_BASE_PRO = frozenset({_F.AUDIO_NARRATION, _F.SUBTITLE_GENERATION, _F.VLA_FINETUNING})
_BASE_ENTERPRISE = _BASE_PRO | {
    _F.SIM2REAL,
    _F.CONTACT_RICH,
    _F.TACTILE,
    _F.MULTI_ROBOT,
    _F.DEFORMABLE,
    _F.BIMANUAL,
}

TIERS: Final = MappingProxyType(
    {
        BundleTier.STANDARD: TierSpec(
            tier=BundleTier.STANDARD,
            data_pack=DataPackTier.CORE,
            episodes_per_variation=10,
            max_variations=250,
            min_quality_score=0.70,
            vla_models=(),
            language_variations=0,
            features=frozenset(),
        ),
        BundleTier.PRO: TierSpec(
            tier=BundleTier.PRO,
            data_pack=DataPackTier.PLUS,
            episodes_per_variation=10,
            max_variations=500,
            min_quality_score=0.80,
            vla_models=("openvla", "smolvla"),
            language_variations=10,
            features=_BASE_PRO,
        ),
        BundleTier.ENTERPRISE: TierSpec(
            tier=BundleTier.ENTERPRISE,
            data_pack=DataPackTier.FULL,
            episodes_per_variation=10,
            max_variations=1000,
            min_quality_score=0.85,
            vla_models=("openvla", "pi0", "smolvla", "groot"),
            language_variations=15,
            features=_BASE_ENTERPRISE,
        ),
        BundleTier.FOUNDATION: TierSpec(
            tier=BundleTier.FOUNDATION,
            data_pack=DataPackTier.FULL,
            episodes_per_variation=25,
            max_variations=2000,
            min_quality_score=0.90,
            vla_models=KNOWN_VLA_MODELS,
            language_variations=20,
            features=frozenset(Feature),
        ),
    }
)

DEFAULT_TIER: Final = BundleTier.STANDARD
"""Tier used when neither the scene nor the customer names one (logged where it happens)."""


def tier_spec(tier: BundleTier) -> TierSpec:
    """The spec of a tier."""
    return TIERS[tier]
