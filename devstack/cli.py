"""Command line of the local stack: `python -m devstack {emulators,run,fire-reset}`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from devstack.emulators import EmulatorError, install_cleanup_handlers, start_emulators
from shared.settings import get_settings


def _interrupt_event() -> threading.Event:
    """An event set by Ctrl-C (SIGINT) or SIGTERM; install it before announcing readiness."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


def _wait_for(stop: threading.Event) -> None:
    while not stop.wait(1.0):
        pass


def cmd_emulators(args: argparse.Namespace) -> int:
    """Start both emulators, print the exports, wait for Ctrl-C, stop them."""
    project = args.project or get_settings().project_id
    pair = start_emulators(project, rules_path=args.rules)
    stop = _interrupt_event()
    try:
        print(f"# Firestore emulator: {pair.firestore.url}  (log {pair.firestore.log_path})")
        print(f"# Pub/Sub emulator:   {pair.pubsub.url}  (log {pair.pubsub.log_path})")
        print(f"# process groups: firestore={pair.firestore.pgid} pubsub={pair.pubsub.pgid}")
        print("# In another shell:")
        for key, value in pair.env.items():
            print(f"export {key}={value}")
        print("# Ctrl-C stops both emulators.", flush=True)
        _wait_for(stop)
    finally:
        print("# stopping emulators ...", flush=True)
        pair.stop()
        print("# stopped.", flush=True)
    return 0


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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    install_cleanup_handlers()
    try:
        return int(args.func(args))
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
