"""Session fixtures shared by every test directory.

Nothing here starts an emulator unless a test asks for one (`emulators` and what depends on it),
so `tests/unit` stays free of network and processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import firestore

from devstack.emulators import Emulators, start_emulators
from devstack.pubsub import PubSubHelper
from shared.settings import get_settings

TEST_PROJECT = "demo-blueprint-test"
_EMULATOR_VARS = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")


@pytest.fixture(scope="session")
def emulators() -> Iterator[Emulators]:
    """The real Firestore and Pub/Sub emulators, started once per session, env exported."""
    saved = {key: os.environ.get(key) for key in _EMULATOR_VARS}
    pair = start_emulators(TEST_PROJECT)
    try:
        pair.export()
        yield pair
    finally:
        pair.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def firestore_client(emulators: Emulators) -> Any:
    """A google.cloud.firestore.Client talking to the session's emulator."""
    return firestore.Client(project=emulators.project)


@pytest.fixture
def clean_firestore(emulators: Emulators) -> Emulators:
    """Start the test with an empty Firestore database."""
    emulators.clear_firestore()
    return emulators


@pytest.fixture(scope="session")
def pubsub(emulators: Emulators) -> Iterator[PubSubHelper]:
    """Pub/Sub clients plus create/publish/pull helpers (unique names per call)."""
    helper = PubSubHelper(emulators.project)
    yield helper
    helper.close()
