"""`python -m devstack fire-reset --month` on the local suite, and what the live log says (the
reset in the words of `inspect resets`, a fold only when it wrote something)."""

from __future__ import annotations

import os
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devstack import cli
from devstack.livelog import FOLD_FUNCTION, LiveLog, format_invocation
from devstack.suite import LocalSuite
from ops.localstack import STATE_FILE_ENV, SuiteState, write_state
from shared.models import UsageEvent
from shared.publisher import usage_event_bytes
from shared.times import month_of

RESET_FUNCTION = "reset-monthly-quotas"


def test_fire_reset_requests_the_month_and_the_live_log_shows_the_decision(
    local_suite: LocalSuite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state.json"
    topic = local_suite.settings.quota_reset_schedule_topic
    write_state(
        SuiteState(
            project=local_suite.project,
            firestore=local_suite.firestore_host,
            pubsub=local_suite.pubsub_host,
            quota_reset_topic=topic,
            pid=os.getpid(),
        ),
        state,
    )
    monkeypatch.setenv(STATE_FILE_ENV, str(state))
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
    # The words of `blueprint inspect resets`: reset N, skipped N (and the others when not 0).
    assert re.fullmatch(r"reset 2020-01: reset \d+, skipped \d+.*", runs[0]["decision"]), runs[0]
    assert " reset 2020-01: reset " in format_invocation(runs[0])  # the live line, not `-`


def test_a_rejected_usage_message_shows_its_kind_in_the_live_log(local_suite: LocalSuite) -> None:
    mark = local_suite.mark()
    local_suite.publish(local_suite.settings.usage_events_topic, b'{"schema_version": 1}')

    def rejected(items: list[dict[str, Any]]) -> bool:
        return any(i["function"] == "on-usage-event" for i in items)

    runs = [i for i in local_suite.wait_for(rejected, mark) if i["function"] == "on-usage-event"]
    assert runs
    assert re.fullmatch(r"rejected:[a-z_]+", runs[0]["decision"]), runs[0]


def test_the_live_log_shows_a_fold_that_wrote_and_leaves_out_one_that_did_not(
    local_suite: LocalSuite,
) -> None:
    settings = local_suite.settings
    cid = f"live_{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    local_suite.firestore.collection(settings.customers_collection).document(cid).set(
        {
            "schema_version": 1,
            "bundle_tier": "pro",
            "monthly_scene_quota": 100,
            "quota_period": month_of(now),
        }
    )
    event = UsageEvent(
        schema_version=1,
        customer_id=cid,
        scene_id="scene_live",
        action="scene_generated",
        timestamp=now,
        event_id=f"{cid}-1",
        episodes_generated=1,
    )
    mark = local_suite.mark()
    local_suite.publish(settings.usage_events_topic, usage_event_bytes(event))

    def ran(function: str) -> Any:
        return lambda items: any(i["function"] == function for i in items)

    local_suite.wait_for(ran("on-usage-event"), mark)

    def fold_once() -> dict[str, Any]:
        since = local_suite.mark()
        local_suite.fire_fold()
        items = local_suite.wait_for(ran(FOLD_FUNCTION), since, timeout=60)
        return next(i for i in items if i["function"] == FOLD_FUNCTION)

    # The fold counts a record a moment after it is stamped (its records lag): fold until then.
    deadline = time.monotonic() + 60
    wrote = fold_once()
    while not wrote["fold"]["customers_written"] and time.monotonic() < deadline:
        assert LiveLog().lines([wrote], time.time()) == [], wrote  # nothing written: no line
        time.sleep(0.5)
        wrote = fold_once()
    assert wrote["fold"]["customers_written"] >= 1, wrote
    [line] = LiveLog().lines([wrote], time.time())
    assert " customer written" in line or " customers written" in line, line
    quiet = fold_once()  # nothing new since the last fold
    assert LiveLog().lines([quiet], time.time()) == [], quiet
