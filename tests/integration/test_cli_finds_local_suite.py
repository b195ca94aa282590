"""`blueprint` with no Google variable set talks to the running local suite by itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from devstack.suite import LocalSuite
from ops.localstack import GOOGLE_VARS, STATE_FILE_ENV, SuiteState, write_state

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_uses_the_suite_the_state_file_names(
    local_suite: LocalSuite, tmp_path: Path
) -> None:
    customer = f"found_{uuid.uuid4().hex[:8]}"
    local_suite.firestore.collection(local_suite.settings.customers_collection).document(
        customer
    ).set({"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 10})
    state = tmp_path / "state.json"
    write_state(
        SuiteState(
            project=local_suite.project,
            firestore=local_suite.firestore_host,
            pubsub=local_suite.pubsub_host,
            host=local_suite.host_url,
            host_pid=local_suite.host.pid,
            pid=os.getpid(),
        ),
        state,
    )
    env = {k: v for k, v in os.environ.items() if k not in GOOGLE_VARS}
    env[STATE_FILE_ENV] = str(state)
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", "inspect", "customers", customer, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        f"using the local suite: project {local_suite.project}, "
        f"Firestore {local_suite.firestore_host}, Pub/Sub {local_suite.pubsub_host} ({state})\n"
    )
    shown = json.loads(done.stdout)
    assert [item["id"] for item in shown["items"]] == [customer]
