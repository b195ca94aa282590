"""The local suite: emulators + every function + relay + topics/subscriptions + example data.

`start_local_suite()` starts (or reuses) the Firestore and Pub/Sub emulators, starts the
functions host (`devstack.functions_host`, one process, its own process group) on the port the
Firestore emulator delivers trigger events to, registers one `eventarcTrigger` per Firestore
function of `functions.table`, creates every topic and the push subscriptions of the Pub/Sub
functions (each with its delivery policy from the table, backoff scaled), loads rules and
(optionally) the example documents. `python -m devstack run` and the `local_suite` pytest
fixture both use it, so end-to-end tests exercise exactly what `make run` runs. It also plays
the `usage-fold` Scheduler job (`devstack.schedule`, every `local_fold_interval_seconds`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from devstack.emulators import (
    LOCALHOST,
    Emulator,
    EmulatorError,
    Emulators,
    free_port,
    http,
    start_emulators,
    start_group,
)
from devstack.pubsub import PubSubHelper
from devstack.push import (  # noqa: F401 -- push_subscription_name: still importable from here
    create_topics_and_subscriptions,
    push_subscription_name,
)
from devstack.schedule import Ticker
from functions.table import FIRESTORE_WRITTEN, FUNCTIONS, TriggerKind
from shared import names
from shared.settings import Settings, load_settings

ROOT: Final = Path(__file__).resolve().parents[1]
RULES_FILE: Final = ROOT / "firestore.rules"
SETUP_TIMEOUT: Final = 60.0
FOLD_LAG_ENV: Final = "BLUEPRINT_USAGE_FOLD_LAG_SECONDS"
LOCAL_FOLD_LAG: Final = "1"
"""The local suite's freshness lag (production's default is longer): enough on the emulator."""
"""Seconds one setup call to an emulator may take: on a loaded machine the first request
after start has taken more than 5 s."""


@dataclasses.dataclass
class LocalSuite:
    """A running local suite. Use `stop()` (or `with`) to end it; the emulators too if owned."""

    emulators: Emulators
    project: str
    host: Emulator
    settings: Settings
    """Settings as the functions see them (project and emulator hosts included)."""
    owns_emulators: bool
    pubsub: PubSubHelper
    _firestore: Any = None
    _fold_ticker: Ticker | None = None
    host_cmd: list[str] = dataclasses.field(default_factory=list)
    host_env: dict[str, str] = dataclasses.field(default_factory=dict)
    _host_gone: bool = False  # stopped, or its exit seen and handled: not a crash at stop

    # --- addresses ---------------------------------------------------------------------------
    @property
    def host_url(self) -> str:
        """Base URL of the functions host."""
        return self.host.url

    def function_url(self, name: str) -> str:
        """Base URL of one function (by deployed name, e.g. `on-usage-event`)."""
        return f"{self.host.url}/{name}"

    @property
    def env(self) -> dict[str, str]:
        """Environment a client needs to reach this suite's emulators and project."""
        return {**self.emulators.env, "GOOGLE_CLOUD_PROJECT": self.project}

    @property
    def firestore_host(self) -> str:
        """HOST:PORT of the Firestore emulator."""
        return self.emulators.firestore_host

    @property
    def pubsub_host(self) -> str:
        """HOST:PORT of the Pub/Sub emulator."""
        return self.emulators.pubsub_host

    @property
    def firestore(self) -> Any:
        """A google.cloud.firestore.Client on this suite's project (created on first use)."""
        if self._firestore is None:
            from google.cloud.firestore_v1 import Client  # noqa: PLC0415 -- heavy import

            with _env(self.env):
                self._firestore = Client(project=self.project)
        return self._firestore

    # --- invocations -------------------------------------------------------------------------
    def invocations(self, since: int = 0, function: str | None = None) -> list[dict[str, Any]]:
        """Function invocations recorded by the host (seq >= since), optionally for one function.

        Each is a dict: seq, function, document, event_id, path, status, decision,
        duration_ms, time (epoch seconds).
        """
        status, body = http("GET", f"{self.host.url}/_devstack/invocations?since={since}")
        if status != 200:
            raise EmulatorError(f"functions host answered HTTP {status}")
        items: list[dict[str, Any]] = json.loads(body)
        return [i for i in items if function is None or i["function"] == function]

    def replay(self, invocation: dict[str, Any]) -> dict[str, Any]:
        """Send a recorded invocation's request to its function again (simulates redelivery);
        returns the new invocation record."""
        status, body = http("POST", f"{self.host.url}/_devstack/replay/{invocation['seq']}")
        if status != 200:
            raise EmulatorError(f"replay failed: HTTP {status} {body[:200]!r}")
        record: dict[str, Any] = json.loads(body)
        return record

    def mark(self) -> int:
        """Sequence number of the next invocation (pass it to `invocations(since=...)`)."""
        items = self.invocations()
        return len(items)

    def wait_for(
        self,
        predicate: Callable[[list[dict[str, Any]]], bool],
        since: int = 0,
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Poll invocations (since `since`) until `predicate` holds; return them."""
        deadline = time.monotonic() + timeout
        while True:
            items = self.invocations(since)
            if predicate(items) or time.monotonic() > deadline:
                return items
            time.sleep(0.05)

    def wait_quiet(self, since: int = 0, quiet: float = 1.0, timeout: float = 60.0) -> list[Any]:
        """Wait until no new invocation arrived for `quiet` seconds; return those since `since`."""
        deadline = time.monotonic() + timeout
        last = -1
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            count = len(self.invocations(since))
            if count != last:
                last, last_change = count, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                break
            time.sleep(0.05)
        return self.invocations(since)

    # --- Pub/Sub -----------------------------------------------------------------------------
    def publish(self, topic: str, data: bytes | str, ordering_key: str = "", **attrs: str) -> str:
        """Publish one message on a topic of this suite's project; returns the message id."""
        return self.pubsub.publish(topic, data, ordering_key, **attrs)

    def fire_reset(self, payload: dict[str, Any] | None = None) -> str:
        """Publish on the quota-reset schedule topic, as Cloud Scheduler does monthly."""
        body = json.dumps(payload or {"job": names.QUOTA_RESET_JOB})
        return self.publish(self.settings.quota_reset_schedule_topic, body)

    def fire_fold(self) -> str:
        """Publish on the fold schedule topic, as the Cloud Scheduler job `usage-fold` does."""
        body = json.dumps({"job": names.USAGE_FOLD_JOB})
        return self.publish(self.settings.usage_fold_schedule_topic, body)

    def subscribe(self, topic: str) -> str:
        """A fresh pull subscription on `topic` (see `pubsub.pull`)."""
        return self.pubsub.create_subscription(topic, ordering=True)

    # --- data --------------------------------------------------------------------------------
    def load_examples(self) -> dict[str, list[str]]:
        """Write the specification's examples, validated through the models; paths by collection."""
        from ops.examples import example_models, stored_example  # noqa: PLC0415

        collections = {
            names.CUSTOMERS: self.settings.customers_collection,
            names.SCENES: self.settings.scenes_collection,
            names.FEATURE_FLAGS: self.settings.feature_flags_collection,
            names.USAGE_TRACKING: self.settings.usage_tracking_collection,
        }
        written: dict[str, list[str]] = {}
        for collection, docs in example_models().items():
            target = collections.get(collection, collection)
            for doc_id, model in docs.items():
                data = stored_example(collection, model, self.settings.usage_fold_buckets)
                self.firestore.collection(target).document(doc_id).set(data)
                written.setdefault(target, []).append(f"{target}/{doc_id}")
        return written

    # --- life cycle --------------------------------------------------------------------------
    def kill_host(self) -> None:
        """SIGKILL the functions host's whole group, as a crash would (outage drills)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.host.pgid, signal.SIGKILL)
        self.host_exited()

    def host_exited(self) -> None:
        """Reap a host that is gone (and its watchdog); the suite will start another."""
        self.host.stop()
        self._host_gone = True

    def start_host(self) -> None:
        """Start the functions host again on the same port (its invocation log starts empty)."""
        popen = start_group("functions host", self.host_cmd, self.host.log_path, self.host_env)
        self.host = Emulator(
            "functions host", self.host.host, self.host.port, popen, self.host.log_path
        )
        self._host_gone = False
        _wait_host(self.host)

    def crashed(self) -> list[Emulator]:
        """Parts (emulators, functions host) whose leading process exited on its own."""
        parts = [self.emulators.firestore, self.emulators.pubsub]
        if not self._host_gone:
            parts.append(self.host)
        return [part for part in parts if part.popen.poll() is not None]

    def stop(self, keep_logs: bool = False) -> Path | None:
        """Stop the functions host and (if this suite started them) the emulators.

        Returns the log directory when it is kept: asked for (`keep_logs`), or a part had
        exited on its own; a clean stop removes the suite's temporary log directory.
        """
        keep = keep_logs or bool(self.crashed())
        if self._fold_ticker is not None:
            self._fold_ticker.stop()
        self.pubsub.close()
        if self._firestore is not None:
            with contextlib.suppress(Exception):
                self._firestore.close()
        self.host.stop()
        if self.owns_emulators:
            return self.emulators.stop(keep_logs=keep)
        return None

    def __enter__(self) -> LocalSuite:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.stop(keep_logs=kind is not None)


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    """Temporarily set environment variables (the Google clients read the emulator hosts)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_local_suite(
    project: str = "demo-blueprint",
    *,
    emulators: Emulators | None = None,
    rules_path: Path | None = RULES_FILE,
    load_examples: bool = False,
    echo: bool = False,
    log_dir: Path | None = None,
    fold_interval: float | None = None,
    host_module: str = "devstack.functions_host",  # a benchmark's instrumented host
) -> LocalSuite:
    """Start the whole suite and return it ready (functions registered, topics created).

    `emulators`: reuse a pair started with `functions_emulator=HOST:PORT` (the host binds that
    port; triggers and data live in `project`, so other projects on that pair see no trigger).
    Otherwise a pair is started and owned by the suite. `echo`: the host prints one line per
    invocation to its log (`python -m devstack run` prints them itself). `fold_interval`:
    seconds between fold ticks (None: the settings'; 0: none, call `fire_fold()`).
    """
    owns = emulators is None
    if emulators is None:
        port = free_port()
        emulators = start_emulators(
            project,
            rules_path=rules_path if rules_path and rules_path.exists() else None,
            functions_emulator=f"{LOCALHOST}:{port}",
            log_dir=log_dir,
        )
    if not emulators.functions_emulator:
        raise EmulatorError("the emulators were started without functions_emulator=HOST:PORT")
    host_addr, _, port_text = emulators.functions_emulator.rpartition(":")
    suite_env = {
        **os.environ,
        **emulators.env,
        "GOOGLE_CLOUD_PROJECT": project,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    suite_env.setdefault(FOLD_LAG_ENV, LOCAL_FOLD_LAG)
    settings = load_settings({k: v for k, v in suite_env.items() if isinstance(v, str)})
    interval = settings.local_fold_interval_seconds if fold_interval is None else fold_interval
    log_path = emulators.log_dir / f"functions-{project}.log"
    cmd = [sys.executable, "-m", host_module, "--host", host_addr, "--port", port_text]
    if not echo:
        cmd.append("--quiet")
    try:
        popen = start_group("functions host", cmd, log_path, suite_env)
        host = Emulator("functions host", host_addr, int(port_text), popen, log_path)
        _wait_host(host)
    except BaseException:
        if owns:
            emulators.stop(keep_logs=True)  # the error quotes the host's log in there
        raise
    suite = LocalSuite(
        emulators=emulators,
        project=project,
        host=host,
        settings=settings,
        owns_emulators=owns,
        pubsub=PubSubHelper(project),
        host_cmd=cmd,
        host_env=suite_env,
    )
    try:
        if not owns and rules_path is not None and rules_path.exists():
            load_rules(emulators, project, rules_path)
        register_triggers(suite)
        with _env(suite.env):
            create_topics_and_subscriptions(suite)
        if load_examples:
            suite.load_examples()
        if interval > 0:
            suite._fold_ticker = Ticker(suite.fire_fold, interval, "fold-schedule").start()
    except OSError as exc:
        suite.stop(keep_logs=True)
        raise EmulatorError(
            f"setting up the local suite failed: {exc!r} (logs kept in {emulators.log_dir})"
        ) from exc
    except BaseException:
        suite.stop(keep_logs=True)
        raise
    return suite


def _wait_host(host: Emulator) -> None:
    host.wait_ready(lambda: http("GET", host.url + "/_devstack/ready", timeout=2)[0] == 200, 60)


def load_rules(emulators: Emulators, project: str, rules_path: Path) -> None:
    """Load security rules into the emulator for `project` over REST."""
    body = json.dumps(
        {"rules": {"files": [{"name": rules_path.name, "content": rules_path.read_text()}]}}
    ).encode()
    url = f"{emulators.firestore.url}/emulator/v1/projects/{project}:securityRules"
    status, answer = http("PUT", url, body, timeout=SETUP_TIMEOUT)
    if status != 200:
        raise EmulatorError(f"loading {rules_path} failed: HTTP {status} {answer[:300]!r}")


def register_trigger(
    suite: LocalSuite, trigger_id: str, pattern: str, event_type: str = FIRESTORE_WRITTEN
) -> None:
    """Register (or replace) one 2nd-gen Firestore trigger with the emulator."""
    body = json.dumps(
        {
            "eventType": event_type,
            "database": "(default)",
            "namespace": "(default)",
            "document": {"value": pattern, "matchType": "PATH_PATTERN"},
        }
    ).encode()
    url = (
        f"{suite.emulators.firestore.url}/emulator/v1/projects/{suite.project}"
        f"/eventarcTrigger?eventarcTriggerId={trigger_id}"
    )
    status, answer = http("POST", url, body, timeout=SETUP_TIMEOUT)
    if status != 200:
        raise EmulatorError(f"registering {trigger_id} failed: HTTP {status} {answer[:300]!r}")


def register_triggers(suite: LocalSuite) -> list[str]:
    """One eventarcTrigger per Firestore function of the table (id = function name)."""
    registered = []
    for spec in FUNCTIONS:
        pattern = spec.document_pattern(suite.settings)
        if spec.trigger is not TriggerKind.FIRESTORE or pattern is None:
            continue
        register_trigger(suite, spec.name, pattern, spec.event_type)
        registered.append(spec.name)
    return registered
