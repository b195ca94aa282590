"""Public import paths survive the splits: `shared.models` and `devstack.emulators` keep every name.

Other systems import `shared.models` (producers validate their events with it); tests, benches
and the local suite import `devstack.emulators`. Both became packages, one job per module; the
names below are what each module exported before, and each must still come from the same path.
"""

from __future__ import annotations

import importlib

import pytest

MODELS_NAMES = (
    # the module's `__all__` before the split
    "CONFIG_MODELS",
    "SCHEMA_VERSION",
    "BundleTier",
    "Customer",
    "DataPackTier",
    "Feature",
    "FeatureFlags",
    "Scene",
    "SupportTier",
    "UsageEvent",
    "UsageRecord",
    "datetime",
    "document_errors",
    "field_errors",
    "to_plain",
    "validate",
    "validate_json",
    # its other public names (field types, aliases, the error types its validators raise)
    "FEATURE_ALIASES",
    "Action",
    "Email",
    "FeatureMap",
    "LanguageCode",
    "M",
    "ModelName",
    "ShortText",
    "TtsVoice",
    "FieldError",
    "InvalidDocumentError",
    "DocumentId",
    "EventCount",
    "Month",
    "NonNegFloat",
    "NonNegInt",
    "StrictBool",
    "UnitFloat",
    "UtcDatetime",
)

EMULATORS_NAMES = (
    "DEFAULT_SDK_ROOT",
    "FIRESTORE_REL",
    "INSTALL_HINT",
    "LOCALHOST",
    "MIN_JAVA",
    "PUBSUB_REL",
    "Commands",
    "Emulator",
    "EmulatorError",
    "Emulators",
    "EmulatorsMissingError",
    "find_commands",
    "free_port",
    "group_alive",
    "http",
    "install_cleanup_handlers",
    "kill_group",
    "sdk_root",
    "start_emulators",
    "start_group",
    "stop_all_groups",
    "tail",
)


@pytest.mark.parametrize(
    ("module", "names"),
    [("shared.models", MODELS_NAMES), ("devstack.emulators", EMULATORS_NAMES)],
)
def test_every_name_is_still_exported(module: str, names: tuple[str, ...]) -> None:
    imported = importlib.import_module(module)
    missing = [n for n in names if not hasattr(imported, n)]
    assert missing == []
    # `__all__` lists them too, so `from ... import *` and mypy's re-export rules agree.
    assert sorted(set(names) - set(imported.__all__)) == []


def test_the_emulator_helpers_are_the_functions_not_submodules() -> None:
    # A submodule named like an exported function would replace it on the package once imported.
    emulators = importlib.import_module("devstack.emulators")
    for name in EMULATORS_NAMES:
        assert not isinstance(getattr(emulators, name), type(emulators)), name
