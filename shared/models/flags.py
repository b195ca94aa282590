"""`feature_flags/{customer_id}` and `feature_flags/_global`: the feature flags document model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict

from shared.models.base import Document, ShortText
from shared.models.vocabulary import Feature
from shared.types import StrictBool, UtcDatetime


class FeatureFlags(Document):
    """`feature_flags/{customer_id}` or `feature_flags/_global` (which may only switch off)."""

    schema_version: Literal[1]
    """Schema version of this document (1)."""
    comment: ShortText | None = Field(None, alias="_comment")
    """Free-text note, stored as `_comment`."""
    audio_narration: StrictBool | None = None
    """Audio narration."""
    subtitle_generation: StrictBool | None = None
    """Subtitle generation."""
    vla_finetuning: StrictBool | None = None
    """VLA fine-tuning data."""
    sim2real: StrictBool | None = None
    """Sim-to-real features."""
    contact_rich: StrictBool | None = None
    """Contact-rich manipulation."""
    tactile: StrictBool | None = None
    """Tactile sensor integration."""
    multi_robot: StrictBool | None = None
    """Multi-robot scenes."""
    deformable: StrictBool | None = None
    """Deformable object simulation."""
    bimanual: StrictBool | None = None
    """Bimanual manipulation."""
    dwm_conditioning: StrictBool | None = None
    """DWM conditioning."""
    streaming_export: StrictBool | None = None
    """Streaming data export."""
    rollouts: dict[Feature, Annotated[int, Strict(), Field(ge=1, le=100)]] | None = None
    """Features a gradual rollout turned on in this document, each with the rollout's percent
    then (audit in `feature_rollouts/{feature}`); flags set by hand are not listed."""
    created_at: UtcDatetime | None = None
    """Creation time (server-generated)."""
    updated_at: UtcDatetime | None = None
    """Last user-visible change (server-generated)."""

    def flags(self) -> dict[Feature, bool]:
        """The features this document sets, and to what."""
        out: dict[Feature, bool] = {}
        for feature in Feature:
            value = getattr(self, feature.value)
            if value is not None:
                out[feature] = value
        return out
