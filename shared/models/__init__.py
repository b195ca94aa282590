"""One pydantic model per document kind, field for field (docs/data-model.md is made of them).

Ranges follow what the schema implies: tiers, support tiers and data packs are enums; quota
>= -1; quality in [0, 1]; counts, minutes and GB non-negative and finite; timestamps
timezone-aware UTC; `schema_version` 1. Numbers and booleans are strict: "45" is not 45.
Unknown fields are refused (`extra="forbid"`): a typo must not pass silently.

`shared.models` is a public import path (other systems import it): every name it ever exported
is re-exported here. The models live one job per module: `base` (configuration, text fields),
`vocabulary` (tiers, features), `customer`, `scene`, `flags`, `usage`, `validation`.
"""

from __future__ import annotations

# `datetime`, the errors and the field types were importable from this module before the
# split (some only as its own imports); they stay importable for the systems that use it.
from datetime import datetime

from shared import names
from shared.errors import FieldError, InvalidDocumentError
from shared.models.base import (
    SCHEMA_VERSION,
    Action,
    Document,
    Email,
    LanguageCode,
    ModelName,
    ShortText,
    TtsVoice,
)
from shared.models.customer import Customer
from shared.models.flags import FeatureFlags
from shared.models.scene import Scene
from shared.models.usage import UsageEvent, UsageRecord
from shared.models.validation import (
    M,
    document_errors,
    field_errors,
    to_plain,
    validate,
    validate_json,
)
from shared.models.vocabulary import (
    FEATURE_ALIASES,
    BundleTier,
    DataPackTier,
    Feature,
    FeatureMap,
    SupportTier,
)
from shared.types import (
    DocumentId,
    EventCount,
    Month,
    NonNegFloat,
    NonNegInt,
    StrictBool,
    UnitFloat,
    UtcDatetime,
)

CONFIG_MODELS: dict[str, type[Document]] = {
    names.CUSTOMERS: Customer,
    names.SCENES: Scene,
    names.FEATURE_FLAGS: FeatureFlags,
}
"""Model of each configuration collection (by its default name), in migration order."""

__all__ = [
    "CONFIG_MODELS",
    "FEATURE_ALIASES",
    "SCHEMA_VERSION",
    "Action",
    "BundleTier",
    "Customer",
    "DataPackTier",
    "Document",
    "DocumentId",
    "Email",
    "EventCount",
    "Feature",
    "FeatureFlags",
    "FeatureMap",
    "FieldError",
    "InvalidDocumentError",
    "LanguageCode",
    "M",
    "ModelName",
    "Month",
    "NonNegFloat",
    "NonNegInt",
    "Scene",
    "ShortText",
    "StrictBool",
    "SupportTier",
    "TtsVoice",
    "UnitFloat",
    "UsageEvent",
    "UsageRecord",
    "UtcDatetime",
    "datetime",
    "document_errors",
    "field_errors",
    "to_plain",
    "validate",
    "validate_json",
]
