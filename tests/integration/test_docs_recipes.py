"""docs/reset.md's gcloud recipe for the local suite, run as written on the Pub/Sub emulator."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from devstack.emulators import Emulators
from devstack.pubsub import PubSubHelper

DOC = Path(__file__).parents[2] / "docs" / "reset.md"


def local_recipe() -> str:
    """The fenced block after "On the local suite" in docs/reset.md."""
    text = DOC.read_text()
    found = re.search(r"On the local suite.*?```\n(?P<block>.*?)```", text, re.DOTALL)
    assert found, "docs/reset.md lost its local-suite gcloud recipe"
    return found["block"]


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="the Google Cloud CLI is not installed")
def test_the_gcloud_publish_recipe_works_on_the_emulator(
    emulators: Emulators, pubsub: PubSubHelper, tmp_path: Path
) -> None:
    topic = pubsub.create_topic("quota-reset-schedule")
    subscription = pubsub.create_subscription(topic)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
    # What `make run` exports, and a gcloud configuration of its own (no account logged in).
    env.update(emulators.env)
    env["CLOUDSDK_CONFIG"] = str(tmp_path / "gcloud")
    done = subprocess.run(
        ["bash", "-euc", local_recipe()],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "messageIds" in done.stdout
    got = pubsub.pull(subscription, count=1, deadline=20)
    assert [json.loads(m.data) for m in got] == [{"period": "2026-12"}]
