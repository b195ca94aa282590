"""`python -m devstack fire-reset --month` on the local suite, and what the live log says."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from devstack import cli
from devstack.suite import LocalSuite

RESET_FUNCTION = "reset-monthly-quotas"


def test_fire_reset_requests_the_month_and_the_live_log_shows_the_decision(
    local_suite: LocalSuite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state.json"
    topic = local_suite.settings.quota_reset_schedule_topic
    state.write_text(
        json.dumps(
            {
                "project": local_suite.project,
                "pubsub": local_suite.pubsub_host,
                "quota_reset_topic": topic,
                "pid": os.getpid(),
            }
        )
    )
    monkeypatch.setattr(cli, "STATE_FILE", state)
    mark = local_suite.mark()
    # A month long past: every customer of the other tests is newer, so nothing is changed.
    assert cli.main(["fire-reset", "--month", "2020-01"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(
        rf"reset 2020-01 requested: message \d+ on {topic} \(the live log shows the outcome\)\n",
        out,
    ), out

    def reset_ran(items: list[dict[str, Any]]) -> bool:
        return any(i["function"] == RESET_FUNCTION for i in items)

    runs = [i for i in local_suite.wait_for(reset_ran, mark) if i["function"] == RESET_FUNCTION]
    assert runs, "the reset function did not run"
    assert re.fullmatch(r"reset 2020-01: \d+/\d+", runs[0]["decision"]), runs[0]
    assert " reset 2020-01: " in cli.format_invocation(runs[0])  # the live line, not `-`


def test_a_rejected_usage_message_shows_its_kind_in_the_live_log(local_suite: LocalSuite) -> None:
    mark = local_suite.mark()
    local_suite.publish(local_suite.settings.usage_events_topic, b'{"schema_version": 1}')

    def rejected(items: list[dict[str, Any]]) -> bool:
        return any(i["function"] == "on-usage-event" for i in items)

    runs = [i for i in local_suite.wait_for(rejected, mark) if i["function"] == "on-usage-event"]
    assert runs
    assert re.fullmatch(r"rejected:[a-z_]+", runs[0]["decision"]), runs[0]
