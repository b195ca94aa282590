"""Command line of the local stack: `python -m devstack {emulators,run,fire-reset,outage}`."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from datetime import UTC, datetime

from devstack.emulators import (
    EmulatorError,
    http,
    install_cleanup_handlers,
    start_emulators,
)
from devstack.state import NoSuiteError, running_suite
from devstack.stopping import catch_stop_signals, stopped_line, wait_for_interrupt
from shared import names
from shared.settings import get_settings


def cmd_emulators(args: argparse.Namespace) -> int:
    """Start both emulators, print the exports, wait for Ctrl-C, stop them."""
    project = args.project or get_settings().project_id
    pair = start_emulators(project, rules_path=args.rules)
    catch_stop_signals()
    clean = False
    try:
        print(f"# Firestore emulator: {pair.firestore.url}  (log {pair.firestore.log_path})")
        print(f"# Pub/Sub emulator:   {pair.pubsub.url}  (log {pair.pubsub.log_path})")
        print(f"# process groups: firestore={pair.firestore.pgid} pubsub={pair.pubsub.pgid}")
        print("# In another shell:")
        for key, value in pair.env.items():
            print(f"export {key}={value}")
        print("# Ctrl-C stops both emulators (their data is in memory: it goes with them).")
        print("#", flush=True)
        wait_for_interrupt()
        clean = True
    finally:
        print("# stopping emulators ...", flush=True)
        print(stopped_line(pair.stop(keep_logs=not clean)), flush=True)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The whole local suite (`devstack.runner`)."""
    from devstack.runner import cmd_run as run  # noqa: PLC0415 -- heavier imports

    return run(args)


def cmd_outage(args: argparse.Namespace) -> int:
    """Take the running suite's functions host away (`devstack.outage`)."""
    from devstack.outage import cmd_outage as outage  # noqa: PLC0415

    return outage(args)


def reset_payload(month: str | None) -> dict[str, str]:
    """The schedule message: the job name, and the month when one is asked for (the function
    resets the month of the message's publish time otherwise)."""
    payload = {"job": names.QUOTA_RESET_JOB, "fired_by": "devstack"}
    if month is not None:
        payload["period"] = month
    return payload


def cmd_fire_reset(args: argparse.Namespace) -> int:
    """Publish the monthly reset message on the running suite's schedule topic."""
    state = running_suite()
    month = args.month or datetime.now(UTC).strftime("%Y-%m")
    payload = json.dumps(reset_payload(args.month)).encode()
    body = json.dumps({"messages": [{"data": base64.b64encode(payload).decode()}]}).encode()
    topic = state.quota_reset_topic or get_settings().quota_reset_schedule_topic
    url = f"http://{state.pubsub}/v1/projects/{state.project}/topics/{topic}:publish"
    try:
        status, answer = http("POST", url, body)
    except OSError as exc:
        raise NoSuiteError(
            f"the suite's Pub/Sub emulator at {state.pubsub} does not answer ({exc}); "
            "restart the suite with `make run`"
        ) from None
    if status != 200:
        print(f"error: publish on {topic} failed: HTTP {status} {answer[:200]!r}", file=sys.stderr)
        return 1
    ids = json.loads(answer).get("messageIds") or ["?"]
    print(f"reset {month} requested: message {ids[0]} on {topic} (the live log shows the outcome)")
    return 0


def _month(text: str) -> str:
    from shared.times import MONTH_RE  # noqa: PLC0415

    if not MONTH_RE.match(text):
        raise argparse.ArgumentTypeError(f"expected YYYY-MM, for example 2025-01, got {text!r}")
    return text


def _seconds(text: str) -> float:
    from devstack.outage import seconds  # noqa: PLC0415

    return seconds(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command per action)."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    emu = sub.add_parser("emulators", help="start the Firestore and Pub/Sub emulators only")
    emu.add_argument(
        "--project", help="project id (default: GOOGLE_CLOUD_PROJECT or demo-blueprint)"
    )
    emu.add_argument("--rules", help="Firestore security rules file to load")
    emu.set_defaults(func=cmd_emulators)
    run = sub.add_parser("run", help="the whole local suite (emulators, functions, relay, data)")
    run.add_argument(
        "--project", help="project id (default: GOOGLE_CLOUD_PROJECT or demo-blueprint)"
    )
    run.add_argument("--no-examples", action="store_true", help="do not load schema.md's examples")
    run.set_defaults(func=cmd_run)
    fire = sub.add_parser("fire-reset", help="publish the monthly reset on the running suite")
    fire.add_argument(
        "--month", type=_month, help="the month to reset, YYYY-MM (default: the current one)"
    )
    fire.set_defaults(func=cmd_fire_reset)
    outage = sub.add_parser(
        "outage", help="take the running suite's functions host away for a while (a drill)"
    )
    outage.add_argument(
        "--seconds", type=_seconds, default=20.0, help="how long it stays away (default: 20)"
    )
    outage.set_defaults(func=cmd_outage)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    install_cleanup_handlers()
    try:
        return int(args.func(args))
    except NoSuiteError as exc:  # a failure, not a usage mistake
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (EmulatorError, OSError) as exc:  # OSError: an emulator or the host did not answer
        print(f"error: {exc}", file=sys.stderr)
        return 2
