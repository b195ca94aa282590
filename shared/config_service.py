"""`CustomerConfigService`: how the pipeline reads configuration (docs/config-service.md).

The public import path other systems use; the code lives in `shared.config` (ports, answers,
overrides, salvage, cache, service, adapters).
"""

from __future__ import annotations

from shared.config.answers import (
    CustomerConfig,
    DocProblem,
    FeatureAnswer,
    FeatureFlagSet,
    SceneConfig,
)
from shared.config.overrides import check_overrides, load_override_file
from shared.config.ports import ConfigReader, DocKey, FetchedDoc, InvalidationFeed
from shared.config.salvage import salvage
from shared.config.service import CustomerConfigService
from shared.invalidation import Invalidation, parse_invalidation

__all__ = [
    "ConfigReader",
    "CustomerConfig",
    "CustomerConfigService",
    "DocKey",
    "DocProblem",
    "FeatureAnswer",
    "FeatureFlagSet",
    "FetchedDoc",
    "Invalidation",
    "InvalidationFeed",
    "SceneConfig",
    "check_overrides",
    "load_override_file",
    "parse_invalidation",
    "salvage",
]
