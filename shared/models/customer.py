"""`customers/{customer_id}`: the customer document model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from shared.models.base import Document, Email, LanguageCode, ShortText, TtsVoice
from shared.models.vocabulary import BundleTier, FeatureMap, SupportTier
from shared.types import Month, NonNegInt, StrictBool, UtcDatetime


class Customer(Document):
    """`customers/{customer_id}`: account, tier, quota and counters."""

    schema_version: Literal[1]
    """Schema version of this document (1)."""
    bundle_tier: BundleTier
    """Tier bought: standard, pro, enterprise or foundation."""
    organization_name: ShortText | None = None
    """Customer's organization name."""
    email: Email | None = None
    """Primary contact email."""
    monthly_scene_quota: Annotated[int, Strict(), Field(ge=-1)] | None = None
    """Max scenes per calendar month (UTC); -1 or absent = unlimited."""
    scenes_generated_this_month: NonNegInt | None = None
    """Scenes counted in the current quota period (see docs/counters.md)."""
    total_scenes_generated: NonNegInt | None = None
    """Lifetime scene count."""
    total_episodes_generated: NonNegInt | None = None
    """Lifetime episode count."""
    audio_narration_enabled: StrictBool | None = None
    """Customer preference: audio narration (still subject to the audio_narration feature)."""
    subtitle_generation_enabled: StrictBool | None = None
    """Customer preference: subtitles (still subject to the subtitle_generation feature)."""
    preferred_tts_voice: TtsVoice | None = None
    """Google Cloud TTS voice id, e.g. en-US-Neural2-D."""
    preferred_language: LanguageCode | None = None
    """Language code, e.g. en-US."""
    support_tier: SupportTier | None = None
    """Support level: basic, priority or dedicated."""
    contract_start: UtcDatetime | None = None
    """Contract start."""
    contract_end: UtcDatetime | None = None
    """Contract end (not before contract_start)."""
    feature_overrides: FeatureMap | None = None
    """Per-customer feature overrides; win over tier defaults and customer flags."""
    created_at: UtcDatetime | None = None
    """Creation time (server-generated)."""
    updated_at: UtcDatetime | None = None
    """Last user-visible change (server-generated)."""
    quota_reset_at: UtcDatetime | None = None
    """When the monthly quota was last reset."""
    # Bookkeeping added by this suite (docs/counters.md); absent on documents that predate it.
    quota_period: Month | None = None
    """Month (YYYY-MM) that scenes_generated_this_month counts; set by the monthly reset."""

    @model_validator(mode="after")
    def _contract_order(self) -> Customer:
        if self.contract_start and self.contract_end and self.contract_end < self.contract_start:
            raise ValueError(
                f"contract_end {self.contract_end.isoformat()} is before contract_start "
                f"{self.contract_start.isoformat()}"
            )
        return self
