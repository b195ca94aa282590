"""The closed vocabularies documents use: bundle, support and data pack tiers, and features."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator

from shared.types import StrictBool


class BundleTier(enum.StrEnum):
    """What a customer buys; sets the defaults a scene inherits."""

    STANDARD = "standard"
    PRO = "pro"
    ENTERPRISE = "enterprise"
    FOUNDATION = "foundation"


class SupportTier(enum.StrEnum):
    """Support level."""

    BASIC = "basic"
    PRIORITY = "priority"
    DEDICATED = "dedicated"


class DataPackTier(enum.StrEnum):
    """Data pack of a scene, ordered core < plus < full."""

    CORE = "core"
    PLUS = "plus"
    FULL = "full"

    @property
    def rank(self) -> int:
        """Position in core < plus < full."""
        return _DATA_PACK_ORDER.index(self)


_DATA_PACK_ORDER = (DataPackTier.CORE, DataPackTier.PLUS, DataPackTier.FULL)


class Feature(enum.StrEnum):
    """A switchable feature, as named in `feature_flags` documents and `feature_overrides`."""

    AUDIO_NARRATION = "audio_narration"
    SUBTITLE_GENERATION = "subtitle_generation"
    VLA_FINETUNING = "vla_finetuning"
    SIM2REAL = "sim2real"
    CONTACT_RICH = "contact_rich"
    TACTILE = "tactile"
    MULTI_ROBOT = "multi_robot"
    DEFORMABLE = "deformable"
    BIMANUAL = "bimanual"
    DWM_CONDITIONING = "dwm_conditioning"
    STREAMING_EXPORT = "streaming_export"


FEATURE_ALIASES: dict[str, Feature] = {"tactile_sensors": Feature.TACTILE}
"""Other spellings met in real documents (the specification's example writes `tactile_sensors`)."""


def _canonical_feature_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {FEATURE_ALIASES.get(k, k) if isinstance(k, str) else k: v for k, v in value.items()}
    return value


FeatureMap = Annotated[dict[Feature, StrictBool], BeforeValidator(_canonical_feature_keys)]
