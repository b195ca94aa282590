"""`load_settings(env)` reads only the mapping it is given, never the process environment."""

from __future__ import annotations

import pytest

from shared.settings import Settings, load_settings


def test_explicit_mapping_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1234")
    monkeypatch.setenv("BLUEPRINT_USAGE_EVENTS_TOPIC", "from-env")
    assert load_settings({}).firestore_emulator_host is None
    assert load_settings({}).usage_events_topic == "usage-events"
    # Without a mapping the environment is read, as before.
    assert load_settings().firestore_emulator_host == "127.0.0.1:1234"
    assert Settings().usage_events_topic == "from-env"


def test_collection_maps_each_logical_name_to_its_setting() -> None:
    from shared import names

    logical = [
        names.CUSTOMERS,
        names.SCENES,
        names.FEATURE_FLAGS,
        names.USAGE_TRACKING,
        names.USAGE_REJECTIONS,
        names.QUOTA_RESETS,
        names.QUOTA_ALERTS,
        names.USAGE_COUNTERS,
        names.USAGE_FOLD_STATE,
        names.FEATURE_ROLLOUTS,
    ]
    defaults = load_settings({})
    assert [defaults.collection(name) for name in logical] == logical
    renamed = load_settings(
        {"BLUEPRINT_CUSTOMERS_COLLECTION": "t_customers", "BLUEPRINT_SCENES_COLLECTION": "t_scenes"}
    )
    assert renamed.collection(names.CUSTOMERS) == "t_customers"
    assert renamed.collection(names.SCENES) == "t_scenes"
    assert renamed.collection(names.FEATURE_FLAGS) == names.FEATURE_FLAGS
    with pytest.raises(KeyError, match="no collection setting for 'nope'"):
        defaults.collection("nope")
