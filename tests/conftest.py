"""Session fixtures shared by every test directory.

Nothing here starts an emulator unless a test asks for one (`emulators` and what depends on it),
so `tests/unit` stays free of network and processes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore
from hypothesis import settings as hypothesis_settings

from devstack.emulators import LOCALHOST, Emulators, free_port, logdirs, start_emulators
from devstack.pubsub import PubSubHelper
from devstack.suite import LocalSuite, start_local_suite
from ops.localstack import STATE_FILE_ENV
from shared.settings import get_settings

# Property tests judge behaviour, not speed: on a loaded 2-core machine a per-example deadline
# only adds flakiness.
hypothesis_settings.register_profile("blueprint", deadline=None)
hypothesis_settings.load_profile("blueprint")

TEST_PROJECT = "demo-blueprint-test"
E2E_PROJECT = "demo-blueprint-e2e"
"""Project of the `local_suite` fixture: its triggers fire only for this project's documents."""
_EMULATOR_VARS = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")


@pytest.fixture(scope="session", autouse=True)
def _own_state_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests' suites write, and the CLI under test reads, a state file of their own: a
    developer's running `make run` is neither found by the tests nor overwritten by them."""
    path = tmp_path_factory.mktemp("devstack") / "state.json"
    saved = os.environ.get(STATE_FILE_ENV)
    os.environ[STATE_FILE_ENV] = str(path)
    yield path
    if saved is None:
        os.environ.pop(STATE_FILE_ENV, None)
    else:
        os.environ[STATE_FILE_ENV] = saved


@pytest.fixture(scope="session", autouse=True)
def _no_log_directory_left() -> Iterator[None]:
    """Every emulator log directory this test process made is gone when the session ends (set up
    first, so it checks after every other session fixture stopped its emulators)."""
    yield
    temp = Path(tempfile.gettempdir())
    left = [d for d in temp.glob(f"{logdirs.PREFIX}*") if logdirs.owner_of(d) == os.getpid()]
    assert left == [], f"emulator log directories left behind: {left}"


@pytest.fixture(scope="session")
def emulators() -> Iterator[Emulators]:
    """The real Firestore and Pub/Sub emulators, started once per session, env exported."""
    saved = {key: os.environ.get(key) for key in _EMULATOR_VARS}
    # Trigger events go to a port the `local_suite` fixture binds if a test asks for it; no
    # trigger is registered for TEST_PROJECT, so plain integration tests never fire a function.
    pair = start_emulators(TEST_PROJECT, functions_emulator=f"{LOCALHOST}:{free_port()}")
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


@pytest.fixture(scope="session")
def local_suite(emulators: Emulators) -> Iterator[LocalSuite]:
    """The local suite (`make run`) on the session's emulators, in project E2E_PROJECT.

    Every function of the function table runs in one functions-framework host; Firestore
    triggers arrive through the relay exactly as in `make run`; Pub/Sub functions get push
    subscriptions. Use `local_suite.firestore` (a client on E2E_PROJECT), `.publish(topic, data)`,
    `.subscribe(topic)` + `.pubsub.pull(sub, n)`, `.invocations(since=...)` / `.mark()` /
    `.wait_quiet()`, `.function_url(name)`, `.fire_reset()` and `.fire_fold()`. Use unique document ids: the
    suite is shared by the whole session and is never cleared (a clear fires delete events).
    """
    # No fold ticks: tests count invocations and fire the fold themselves (`fire_fold()`).
    suite = start_local_suite(E2E_PROJECT, emulators=emulators, fold_interval=0)
    yield suite
    suite.stop()
