"""Settings read the environment and fail naming the variable; the function table is coherent."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from functions import main
from functions.table import FIRESTORE_WRITTEN, FUNCTIONS, PUBSUB_PUBLISHED, TriggerKind, by_name
from shared import names
from shared.errors import ConfigurationError
from shared.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_need_no_environment() -> None:
    settings = load_settings({})
    assert settings.usage_events_topic == names.USAGE_EVENTS_TOPIC
    assert settings.customers_collection == names.CUSTOMERS
    assert settings.firestore_emulator_host is None


def test_the_fold_lag_defaults_to_5_seconds_and_takes_at_least_1() -> None:
    assert load_settings({}).usage_fold_lag_seconds == 5
    assert load_settings({"BLUEPRINT_USAGE_FOLD_LAG_SECONDS": "1"}).usage_fold_lag_seconds == 1


def test_environment_overrides_names() -> None:
    settings = load_settings(
        {"GOOGLE_CLOUD_PROJECT": "my-proj-1", "BLUEPRINT_USAGE_EVENTS_TOPIC": "usage-v2"}
    )
    assert (settings.project_id, settings.usage_events_topic) == ("my-proj-1", "usage-v2")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GOOGLE_CLOUD_PROJECT", "Not A Project"),
        ("FIRESTORE_EMULATOR_HOST", "localhost"),
        ("PUBSUB_EMULATOR_HOST", "127.0.0.1:99999"),
        ("BLUEPRINT_USAGE_EVENTS_TOPIC", "goog-reserved"),
        ("BLUEPRINT_CUSTOMERS_COLLECTION", "a/b"),
        ("BLUEPRINT_CUSTOMERS_COLLECTION", "customers\n"),
        ("GOOGLE_CLOUD_PROJECT", "demo-project\n"),
        ("BLUEPRINT_FIRESTORE_TIMEOUT_SECONDS", "-1"),
        ("BLUEPRINT_LOG_FORMAT", "xml"),
        ("BLUEPRINT_USAGE_FOLD_LAG_SECONDS", "0.5"),
        ("BLUEPRINT_USAGE_FOLD_MAX_RECORDS", "0"),
    ],
)
def test_bad_value_names_variable_and_value(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({variable: value})
    assert variable in str(caught.value)
    assert repr(value) in str(caught.value)


def test_settings_is_the_only_reader_of_the_environment() -> None:
    offenders = []
    for path in [*ROOT.glob("shared/**/*.py"), *ROOT.glob("functions/**/*.py")]:
        if path.name == "settings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_function_table_names_its_functions_exported_by_main() -> None:
    assert {f.name for f in FUNCTIONS} >= {
        "on-customer-written",
        "on-scene-written",
        "on-feature-flags-written",
        "on-usage-event",
        "reset-monthly-quotas",
        "fold-usage-counters",
        "record-dead-letters",
        "record-schedule-dead-letters",
    }
    for spec in FUNCTIONS:
        handler = getattr(main, spec.entry_point)
        assert callable(handler)
        assert list(inspect.signature(handler).parameters) == ["event"]


def test_function_table_triggers_match_decisions() -> None:
    settings = Settings()
    expected = {
        "on-customer-written": (FIRESTORE_WRITTEN, "customers/{customerId}", None),
        "on-scene-written": (FIRESTORE_WRITTEN, "scenes/{sceneId}", None),
        "on-feature-flags-written": (FIRESTORE_WRITTEN, "feature_flags/{docId}", None),
        "on-usage-event": (PUBSUB_PUBLISHED, None, "usage-events"),
        "reset-monthly-quotas": (PUBSUB_PUBLISHED, None, "quota-reset-schedule"),
        "fold-usage-counters": (PUBSUB_PUBLISHED, None, "usage-fold-schedule"),
    }
    for name, (event_type, document, topic) in expected.items():
        spec = by_name(name)
        assert spec.event_type == event_type
        assert spec.document_pattern(settings) == document
        assert spec.topic(settings) == topic
        assert (spec.trigger is TriggerKind.FIRESTORE) == (document is not None)
    with pytest.raises(KeyError, match="no function named"):
        by_name("nope")


def test_renamed_collection_moves_the_trigger_pattern() -> None:
    settings = load_settings({"BLUEPRINT_SCENES_COLLECTION": "scenes_v2"})
    assert by_name("on-scene-written").document_pattern(settings) == "scenes_v2/{sceneId}"


def test_concurrency_above_one_has_at_least_one_vcpu() -> None:
    # Cloud Run functions force concurrency 1 below 1 vCPU (production.md): a table entry
    # asking for more without the CPU would silently serve one request at a time.
    for spec in FUNCTIONS:
        if spec.concurrency > 1:
            assert spec.cpu is not None, spec.name
            assert float(spec.cpu) >= 1, spec.name
    assert by_name("on-usage-event").concurrency > 1
