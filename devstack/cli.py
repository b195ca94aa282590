"""Command line of the local stack: `python -m devstack {emulators,run,fire-reset}`."""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack.emulators import (
    EmulatorError,
    http,
    install_cleanup_handlers,
    start_emulators,
    tail,
)
from shared import names
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = ROOT / ".devstack" / "state.json"


_STOP = threading.Event()


class SuitePartCrashedError(EmulatorError):
    """A part of the running suite exited on its own; everything else is stopped."""


def _catch_stop_signals() -> None:
    """From now on Ctrl-C (SIGINT) and SIGTERM ask for an orderly stop."""

    def on_signal(signum: int, frame: object) -> None:
        _STOP.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def _wait_for_interrupt(tick: Any = None) -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM, calling `tick()` about 5 times a second."""
    _catch_stop_signals()
    while not _STOP.wait(0.2):
        if tick is not None:
            tick()


def cmd_emulators(args: argparse.Namespace) -> int:
    """Start both emulators, print the exports, wait for Ctrl-C, stop them."""
    project = args.project or get_settings().project_id
    pair = start_emulators(project, rules_path=args.rules)
    _catch_stop_signals()
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
        _wait_for_interrupt()
        clean = True
    finally:
        print("# stopping emulators ...", flush=True)
        print(_stopped(pair.stop(keep_logs=not clean)), flush=True)
    return 0


def _stopped(kept: Path | None) -> str:
    """The last line of a stop: where the logs are if they were kept (after a crash)."""
    if kept is None:
        return "# stopped; nothing left running; logs removed."
    return f"# stopped; nothing left running; logs kept in {kept}"


def format_invocation(item: dict[str, Any]) -> str:
    """One readable live-log line: time, function, document, decision, duration."""
    stamp = datetime.fromtimestamp(item["time"], UTC).strftime("%H:%M:%S.%f")[:-3]
    status = "" if item["status"] < 300 else f"  HTTP {item['status']}"
    return (
        f"{stamp}  {item['function']:<26} {item['document'] or item['path']:<36} "
        f"{item['decision']:<22} {item['duration_ms']:8.1f} ms{status}"
    )


def cmd_run(args: argparse.Namespace) -> int:
    """The whole local suite; live log until Ctrl-C; then everything stops."""
    from devstack.suite import start_local_suite  # noqa: PLC0415 -- heavier imports

    project = args.project or get_settings().project_id
    print(f"# starting the local suite for project {project} ...", flush=True)
    suite = start_local_suite(project, load_examples=False)
    _catch_stop_signals()
    clean = False
    try:
        suite.emulators.export()
        STATE_FILE.parent.mkdir(exist_ok=True)
        STATE_FILE.write_text(
            json.dumps(
                {
                    "project": project,
                    "pubsub": suite.pubsub_host,
                    "firestore": suite.firestore_host,
                    "host": suite.host_url,
                    "quota_reset_topic": suite.settings.quota_reset_schedule_topic,
                    "pid": os.getpid(),
                }
            )
        )
        print(f"# Firestore emulator  {suite.emulators.firestore.url}", flush=True)
        print(f"# Pub/Sub emulator    {suite.emulators.pubsub.url}", flush=True)
        print(f"# functions host      {suite.host_url}  (log {suite.host.log_path})")
        print(f"# logs in             {suite.emulators.log_dir}")
        print(
            f"# process groups: firestore={suite.emulators.firestore.pgid} "
            f"pubsub={suite.emulators.pubsub.pgid} host={suite.host.pgid}"
        )
        for key, value in suite.env.items():
            print(f"export {key}={value}")
        print("# fire the monthly reset: python -m devstack fire-reset [--month YYYY-MM]")
        interval = suite.settings.local_fold_interval_seconds
        print(f"# usage fold: every {interval:g} s (BLUEPRINT_LOCAL_FOLD_INTERVAL_SECONDS)")
        lag = suite.settings.usage_fold_lag_seconds
        print(f"# a record is counted by the first fold {lag:g} s after it is written")
        print("# Ctrl-C stops everything; the emulators' data is in memory and goes with them.")
        print(
            f"{'# time':<12}  {'function':<26} {'document':<36} {'decision':<22} {'duration':>11}"
        )
        seen = 0

        def tick() -> None:
            nonlocal seen
            with contextlib.suppress(OSError, EmulatorError):
                for item in suite.invocations(seen):
                    print(format_invocation(item), flush=True)
                    seen = item["seq"] + 1
            for part in suite.crashed():
                raise SuitePartCrashedError(
                    f"the {part.name} exited on its own (status {part.popen.returncode}); "
                    f"everything else was stopped. Log {part.log_path}:\n{tail(part.log_path)}"
                )

        if not args.no_examples:
            loaded = suite.load_examples()
            count = sum(len(v) for v in loaded.values())
            print(f"# loaded {count} example documents: {sorted(loaded)}", flush=True)
        _wait_for_interrupt(tick)
        clean = True
    finally:
        print("# stopping ...", flush=True)
        kept = suite.stop(keep_logs=not clean)
        with contextlib.suppress(OSError):
            STATE_FILE.unlink()
        print(_stopped(kept), flush=True)
    return 0


class NoSuiteError(EmulatorError):
    """`fire-reset` found no running local suite."""


def _running_suite() -> dict[str, Any]:
    """The state of the running `make run`; NoSuiteError (stale state file removed) if none."""
    try:
        state = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        raise NoSuiteError("no local suite is running: start one with `make run`") from None
    stale = not isinstance(state, dict) or not _process_alive(state.get("pid"))
    if not stale:
        status, _ = _get_or_refused(f"http://{state['pubsub']}/v1/projects/{state['project']}")
        stale = status is None
    if stale:
        with contextlib.suppress(OSError):
            STATE_FILE.unlink()
        raise NoSuiteError(
            f"no local suite is running (removed the stale {STATE_FILE} left by one "
            "that stopped): start one with `make run`"
        )
    return dict(state)


def _process_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _get_or_refused(url: str) -> tuple[int | None, bytes]:
    """(status, body); status None when nothing listens there."""
    try:
        return http("GET", url, timeout=3)
    except OSError:
        return None, b""


def reset_payload(month: str | None) -> dict[str, str]:
    """The schedule message: the job name, and the month when one is asked for (the function
    resets the month of the message's publish time otherwise)."""
    payload = {"job": names.QUOTA_RESET_JOB, "fired_by": "devstack"}
    if month is not None:
        payload["period"] = month
    return payload


def cmd_fire_reset(args: argparse.Namespace) -> int:
    """Publish the monthly reset message on the running suite's schedule topic."""
    state = _running_suite()
    month = args.month or datetime.now(UTC).strftime("%Y-%m")
    payload = json.dumps(reset_payload(args.month)).encode()
    body = json.dumps({"messages": [{"data": base64.b64encode(payload).decode()}]}).encode()
    topic = state["quota_reset_topic"]
    url = f"http://{state['pubsub']}/v1/projects/{state['project']}/topics/{topic}:publish"
    try:
        status, answer = http("POST", url, body)
    except OSError as exc:
        raise NoSuiteError(
            f"the suite's Pub/Sub emulator at {state['pubsub']} does not answer ({exc}); "
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
