"""cloudbuild.yaml deploys exactly the function table, and is what the generator writes."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace as replace_spec
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import cloudbuild
from functions.table import FUNCTIONS, FunctionSpec, TriggerKind
from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
CLOUDBUILD = ROOT / "cloudbuild.yaml"
SETTINGS = load_settings({})


def load(text: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(text if text is not None else CLOUDBUILD.read_text())
    return data


def flags(args: list[str]) -> dict[str, list[str]]:
    """`--name=value` / bare `--name` arguments, grouped by name (repeatable flags keep all)."""
    found: dict[str, list[str]] = defaultdict(list)
    for arg in args:
        if arg.startswith("--"):
            name, _, value = arg.partition("=")
            found[name].append(value)
    return dict(found)


def deploy_steps(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Deployed function name -> its flags, for every `gcloud functions deploy` step."""
    result: dict[str, dict[str, list[str]]] = {}
    for step in config["steps"]:
        args = [str(a) for a in step.get("args", [])]
        if step.get("entrypoint") == "gcloud" and args[:2] == ["functions", "deploy"]:
            name = args[2]
            assert name not in result, f"{name} is deployed twice"
            result[name] = flags(args[3:])
    return result


def mismatches(spec: FunctionSpec, got: dict[str, list[str]]) -> list[str]:
    """Every way a deploy step's flags differ from the table's entry."""
    problems = []

    def expect(flag: str, values: list[str]) -> None:
        if sorted(got.get(flag, [])) != sorted(values):
            problems.append(f"{flag}: expected {values}, got {got.get(flag)}")

    expect("--gen2", [""])
    expect("--entry-point", [spec.entry_point])
    expect("--memory", [spec.memory])
    expect("--timeout", [f"{spec.timeout_seconds}s"])
    expect("--max-instances", [str(spec.max_instances)])
    expect("--region", ["${_REGION}"])
    expect("--service-account", ["${_SERVICE_ACCOUNT}"])
    expect("--retry", [""] if spec.retry else [])
    expect("--concurrency", [str(spec.concurrency)])
    expect("--cpu", [spec.cpu] if spec.cpu is not None else [])
    expect("--trigger-service-account", ["${_SERVICE_ACCOUNT}"])
    expect("--runtime", [cloudbuild.RUNTIME])
    env = runtime_env(got)
    if env.get("GOOGLE_CLOUD_PROJECT") != "$PROJECT_ID":
        problems.append(
            "--set-env-vars: GOOGLE_CLOUD_PROJECT must be $PROJECT_ID (Cloud Run functions do "
            f"not set it; the settings would fall back to a demo project), got {env}"
        )
    if env.get("THREADS") != str(spec.concurrency):
        problems.append(
            f"--set-env-vars: THREADS must be the concurrency {spec.concurrency} "
            f"(functions-framework serves 4 threads per vCPU otherwise), got {env}"
        )
    if spec.trigger is TriggerKind.FIRESTORE:
        expect("--trigger-event-filters", [f"type={spec.event_type}", "database=(default)"])
        expect(
            "--trigger-event-filters-path-pattern",
            [f"document={spec.document_pattern(SETTINGS)}"],
        )
        # Firestore triggers live in the database's location, not the function's region.
        expect("--trigger-location", ["${_FIRESTORE_LOCATION}"])
        expect("--trigger-topic", [])
    else:
        # `--trigger-topic` is Eventarc's messagePublished filter on that topic.
        if spec.event_type != "google.cloud.pubsub.topic.v1.messagePublished":
            problems.append(f"table event type {spec.event_type} has no --trigger-topic form")
        expect("--trigger-topic", [str(spec.topic(SETTINGS))])
        expect("--trigger-event-filters", [])
        expect("--trigger-event-filters-path-pattern", [])
        expect("--trigger-location", [])
    return problems


def runtime_env(got: dict[str, list[str]]) -> dict[str, str]:
    """The runtime environment a deploy step sets (`--set-env-vars=K=V,K=V`, last flag wins)."""
    values = got.get("--set-env-vars", [])
    if not values:
        return {}
    pairs = (item.partition("=") for item in values[-1].split(","))
    return {key: value for key, _, value in pairs}


def check(config: dict[str, Any]) -> list[str]:
    """All problems of a parsed cloudbuild config against the function table."""
    steps = deploy_steps(config)
    table = {spec.name: spec for spec in FUNCTIONS}
    problems = [f"{name}: not deployed" for name in table if name not in steps]
    problems += [f"{name}: deployed but not in the table" for name in steps if name not in table]
    for name, got in steps.items():
        if name in table:
            problems += [f"{name}: {p}" for p in mismatches(table[name], got)]
    # A deploy hidden in a script would escape the checks above.
    for step in config["steps"]:
        if step.get("entrypoint") == "gcloud":
            continue
        for arg in step.get("args", []):
            if re.search(r"functions\s+deploy", str(arg)):
                problems.append(f"step {step.get('id')}: deploys a function from a script")
    return problems


def test_committed_file_is_the_generated_one() -> None:
    assert CLOUDBUILD.read_text() == cloudbuild.cloudbuild_yaml(), (
        "cloudbuild.yaml is stale: run `python -m deploy cloudbuild > cloudbuild.yaml`"
    )


def test_every_function_of_the_table_is_deployed_as_declared() -> None:
    config = load()
    assert check(config) == []
    assert set(deploy_steps(config)) == {spec.name for spec in FUNCTIONS}


def _first_deploy(config: dict[str, Any], name: str | None = None) -> list[str]:
    for step in config["steps"]:
        args = step.get("args", [])
        if args[:2] == ["functions", "deploy"] and (name is None or args[2] == name):
            return list(args)
    raise AssertionError("no deploy step")


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        ("drop", "on-usage-event: not deployed"),
        ("rename", "on-usage-evnt: deployed but not in the table"),
        ("entry", "--entry-point"),
        ("topic", "--trigger-topic"),
        ("filter", "--trigger-event-filters"),
        ("pattern", "--trigger-event-filters-path-pattern"),
        ("retry", "--retry"),
        ("memory", "--memory"),
        ("location", "--trigger-location"),
        ("trigger_sa", "--trigger-service-account"),
        ("concurrency", "--concurrency"),
        ("cpu", "--cpu"),
        ("project_env", "GOOGLE_CLOUD_PROJECT"),
        ("script", "deploys a function from a script"),
    ],
)
def test_check_catches(mutation: str, expected: str) -> None:
    """The checker is not vacuous: each kind of drift is reported."""
    config = load()
    steps = config["steps"]
    usage = next(s for s in steps if s.get("args", [None, None, None])[2:3] == ["on-usage-event"])
    customer = next(
        s for s in steps if s.get("args", [None, None, None])[2:3] == ["on-customer-written"]
    )

    def replace(step: dict[str, Any], prefix: str, new: str | None) -> None:
        args = [a for a in step["args"] if not a.startswith(prefix)]
        step["args"] = args if new is None else [*args, new]

    if mutation == "drop":
        steps.remove(usage)
    elif mutation == "rename":
        usage["args"][2] = "on-usage-evnt"
    elif mutation == "entry":
        replace(usage, "--entry-point", "--entry-point=on_scene_written")
    elif mutation == "topic":
        replace(usage, "--trigger-topic", "--trigger-topic=quota-alerts")
    elif mutation == "filter":
        replace(customer, "--trigger-event-filters=type", "--trigger-event-filters=type=x.deleted")
    elif mutation == "pattern":
        replace(
            customer,
            "--trigger-event-filters-path-pattern",
            "--trigger-event-filters-path-pattern=document=scenes/{sceneId}",
        )
    elif mutation == "retry":
        replace(usage, "--retry", None)
    elif mutation == "memory":
        replace(usage, "--memory", "--memory=128Mi")
    elif mutation == "location":
        replace(customer, "--trigger-location", None)
    elif mutation == "trigger_sa":
        replace(usage, "--trigger-service-account", None)
    elif mutation == "concurrency":
        replace(usage, "--concurrency", "--concurrency=80")
    elif mutation == "cpu":
        replace(usage, "--cpu", None)
    elif mutation == "project_env":
        replace(usage, "--set-env-vars", "--set-env-vars=BLUEPRINT_REGION=${_REGION}")
    elif mutation == "script":
        steps.append(
            {"id": "sneaky", "entrypoint": "bash", "args": ["-c", "gcloud functions  deploy x"]}
        )
    problems = check(config)
    assert any(expected in p for p in problems), problems


def test_pipeline_steps_run_in_a_safe_order() -> None:
    """Nothing deploys before lint, types and tests passed; the source is packaged first."""
    steps = {s["id"]: s for s in load()["steps"]}

    def ancestors(step_id: str) -> set[str]:
        seen: set[str] = set()
        todo = list(steps[step_id].get("waitFor", []))
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo += steps[current].get("waitFor", [])
        return seen

    for step_id in steps:
        if (
            step_id.startswith("deploy-")
            or step_id
            in {
                "topics",
                "scheduler-job",
                "firestore-rules-indexes",
            }
            or step_id.startswith("delivery-")
        ):
            assert {"lint-types", "tests", "install"} <= ancestors(step_id), step_id
        if step_id.startswith("deploy-"):
            assert {"package", "topics"} <= ancestors(step_id), step_id
    assert "--source=build/functions-src" in _first_deploy(load())
    assert steps["package"]["args"] == ["-m", "deploy.package", "build/functions-src"]


def test_substitutions_and_project() -> None:
    config = load()
    assert {"_REGION", "_SERVICE_ACCOUNT"} <= set(config["substitutions"])
    text = CLOUDBUILD.read_text()
    # Every `${_X}` used is declared; the project comes from Cloud Build's $PROJECT_ID.
    used = set(re.findall(r"\$\{(_[A-Z_]+)\}", text))
    assert used <= set(config["substitutions"]), used - set(config["substitutions"])
    assert "$PROJECT_ID" in text
    assert "demo-" not in text


def test_topics_dead_letter_scheduler_and_firestore_steps() -> None:
    steps = {s["id"]: s for s in load()["steps"]}
    topics_script = steps["topics"]["args"][1]
    for topic in cloudbuild.topics(SETTINGS):
        assert f"gcloud pubsub topics create {topic}" in topics_script
    dead_letter = steps["delivery-on-usage-event"]["args"][1]
    assert f"--dead-letter-topic={SETTINGS.usage_events_dead_letter_topic}" in dead_letter
    assert "gcloud functions describe on-usage-event" in dead_letter
    for dead in cloudbuild.dead_letter_topics(SETTINGS):
        # Nobody pulls a hold subscription: without "never" Pub/Sub deletes it after 31 days.
        hold = f"{cloudbuild.hold_subscription(dead)} --topic={dead}"
        assert f"{hold} --message-retention-duration=7d --expiration-period=never" in topics_script
    assert "deploy.scheduler_job ensure" in steps["scheduler-job"]["args"][1]
    assert "--only=firestore" in steps["firestore-rules-indexes"]["args"]


def test_the_fold_is_deployed_on_its_schedule_topic_with_its_job() -> None:
    steps = {s["id"]: s for s in load()["steps"]}
    fold = steps["deploy-fold-usage-counters"]["args"]
    assert f"--trigger-topic={SETTINGS.usage_fold_schedule_topic}" in fold
    assert "--retry" not in fold  # the next minute's tick is the retry
    assert f"topics create {SETTINGS.usage_fold_schedule_topic}" in steps["topics"]["args"][1]
    assert "deploy.scheduler_job ensure" in steps["scheduler-job"]["args"][1]


def test_every_pubsub_function_gets_the_tables_delivery_policy() -> None:
    """Attempts, backoff and dead-letter topic come from the table's constants, nowhere else."""
    steps = {s["id"]: s for s in load()["steps"]}
    pubsub = [spec for spec in FUNCTIONS if spec.trigger is TriggerKind.PUBSUB]
    assert {"reset-monthly-quotas", "on-usage-event", "record-dead-letters"} <= {
        spec.name for spec in pubsub
    }
    for spec in pubsub:
        assert spec.delivery is not None, spec.name
        script = steps[cloudbuild.delivery_step_id(spec)]["args"][1]
        assert steps[cloudbuild.delivery_step_id(spec)]["waitFor"] == [f"deploy-{spec.name}"]
        assert f"--min-retry-delay={spec.delivery.min_backoff_seconds:g}s" in script
        assert f"--max-retry-delay={spec.delivery.max_backoff_seconds:g}s" in script
        dead = spec.delivery.dead_letter_topic(SETTINGS)
        if dead is None:
            assert "--dead-letter-topic" not in script, spec.name
        else:
            assert f"--dead-letter-topic={dead}" in script
            assert f"--max-delivery-attempts={spec.delivery.max_delivery_attempts}" in script
            assert f"topics add-iam-policy-binding {dead} " in script
    usage = next(spec for spec in pubsub if spec.name == "on-usage-event")
    script = steps["delivery-on-usage-event"]["args"][1]
    # Production's policy: 10 attempts, 10-600 s backoff.
    assert "--max-delivery-attempts=10" in script
    assert "--min-retry-delay=10s --max-retry-delay=600s" in script
    assert usage.delivery is not None
    assert usage.delivery.max_delivery_attempts == 10


def test_functions_without_request_logs_get_one_exclusion_of_their_2xx_request_logs() -> None:
    quiet = [spec.name for spec in FUNCTIONS if not spec.request_logs]
    assert quiet == [
        "on-customer-written",
        "on-scene-written",
        "on-feature-flags-written",
        "on-usage-event",
    ]
    steps = {step["id"]: step for step in load()["steps"]}
    script = steps["log-exclusions"]["args"][1]
    assert (
        'resource.labels.service_name=("on-customer-written" OR "on-scene-written" OR '
        '"on-feature-flags-written" OR "on-usage-event")'
    ) in script
    assert "httpRequest.status<300" in script  # failures keep their request log
    assert 'log_id("run.googleapis.com/requests")' in script
    assert "--remove-exclusions=blueprint-ok-requests" in script  # a redeploy replaces it
    assert "," not in script.split("filter=", 1)[1]  # gcloud splits --add-exclusion on commas
    one = tuple(
        replace_spec(spec, request_logs=spec.name != "on-usage-event") for spec in FUNCTIONS
    )
    assert 'service_name="on-usage-event"' in str(cloudbuild.request_log_filter(one))
    everyone = tuple(replace_spec(spec, request_logs=True) for spec in FUNCTIONS)
    assert cloudbuild.request_log_filter(everyone) is None
