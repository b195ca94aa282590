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
