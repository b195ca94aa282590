"""`python -m devstack run` (`make run`): the whole suite, its live log, until Ctrl-C.

Start-up ends with what to type next (`try_it_lines`); then one line per invocation
(`devstack.livelog`). A functions host that exits is started again (`devstack.supervisor`);
an emulator that exits stops the run: its data is gone, carrying on would hide that.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from devstack.console import LocalConsole
from devstack.emulators import EmulatorError, tail
from devstack.livelog import LiveLog, header, notice
from devstack.stopping import catch_stop_signals, stopped_line, wait_for_interrupt
from devstack.suite import LocalSuite, start_local_suite
from devstack.supervisor import HostSupervisor, SuitePartCrashedError, outage_file, remove_outage
from ops.localstack import SuiteState, remove_state, shown, state_file, write_state
from shared.settings import get_settings


def suite_state(suite: LocalSuite) -> SuiteState:
    """What the CLI and the devstack commands need to find this suite (the state file)."""
    return SuiteState(
        project=suite.project,
        firestore=suite.firestore_host,
        pubsub=suite.pubsub_host,
        host=suite.host_url,
        host_pid=suite.host.pid,
        pid=os.getpid(),
        quota_reset_topic=suite.settings.quota_reset_schedule_topic,
    )


def bin_prefix() -> str:
    """Where this Python's scripts are, as a person types it (`.venv/bin/`), else nothing."""
    scripts = Path(sys.executable).parent
    if not (scripts / "blueprint").exists():
        return ""
    with contextlib.suppress(ValueError):
        return f"{scripts.absolute().relative_to(Path.cwd())}/"
    return f"{scripts}/"


def try_it_lines(
    month: str, prefix: str = ".venv/bin/", console_url: str | None = None
) -> list[str]:
    """The start-up's last block: the commands to type next, in another shell.

    The place for anything else a newcomer should see first (a console's URL, when the suite
    serves one: pass `console_url`).
    """
    blueprint = f"{prefix}blueprint"
    lines = [
        "# try it, in another shell in this folder (the CLI finds this suite by itself):",
        f"#   {blueprint} usage send --customer lab_001 --action scene_generated "
        "--scene scene_kitchen_v2 --episodes 3",
        f"#   {blueprint} inspect customers lab_001",
        f"#   {blueprint} usage report --customer lab_001 --month {month} --chart usage.png",
        f"#   {blueprint} watch alerts",
        f"#   {prefix}python -m devstack outage --seconds 20   (send a few events while it is "
        f"away; then {blueprint} inspect dead-letters; {blueprint} usage replay)",
    ]
    if console_url:
        lines.append(f"#   open the console: {console_url}")
    lines.append("# Ctrl-C stops everything; the emulators' data is in memory and goes with them.")
    return lines


def _startup_lines(suite: LocalSuite, state_path: Path) -> list[str]:
    settings = suite.settings
    interval = settings.local_fold_interval_seconds
    lag = settings.usage_fold_lag_seconds
    return [
        f"# Firestore emulator  {suite.emulators.firestore.url}",
        f"# Pub/Sub emulator    {suite.emulators.pubsub.url}",
        f"# functions host      {suite.host_url}  (log {suite.host.log_path})",
        f"# logs in             {suite.emulators.log_dir}",
        f"# state file          {shown(state_path)}",
        f"# process groups: firestore={suite.emulators.firestore.pgid} "
        f"pubsub={suite.emulators.pubsub.pgid} host={suite.host.pgid}",
        "# for other programs:",
        *(f"export {key}={value}" for key, value in suite.env.items()),
        "# fire the monthly reset: python -m devstack fire-reset [--month YYYY-MM]",
        f"# usage fold: every {interval:g} s (BLUEPRINT_LOCAL_FOLD_INTERVAL_SECONDS); "
        "the live log shows the folds that wrote something",
        f"# a record is counted by the first fold that starts {lag:g} s after it is written "
        "(BLUEPRINT_USAGE_FOLD_LAG_SECONDS)",
    ]


def _say(text: str) -> None:
    print(notice(time.time(), text), flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    """The whole local suite; live log until Ctrl-C; then everything stops."""
    project = args.project or get_settings().project_id
    state_path = state_file()
    print(f"# starting the local suite for project {project} ...", flush=True)
    suite = start_local_suite(project, load_examples=False)
    catch_stop_signals()
    clean = False
    outages = outage_file(state_path)
    console: LocalConsole | None = None
    try:
        suite.emulators.export()
        console = LocalConsole(suite.settings)
        remove_outage(outages)  # one left by a suite that was killed is not for this one
        write_state(suite_state(suite), state_path)
        for line in _startup_lines(suite, state_path):
            print(line, flush=True)
        if not args.no_examples:
            loaded = suite.load_examples()
            count = sum(len(v) for v in loaded.values())
            print(f"# loaded {count} example documents: {sorted(loaded)}", flush=True)
        month = datetime.now(UTC).strftime("%Y-%m")
        for line in try_it_lines(month, bin_prefix(), console.url):
            print(line, flush=True)
        print(header(), flush=True)
        _live(suite, state_path)
        clean = True
    finally:
        print("# stopping ...", flush=True)
        if console is not None:
            console.stop()
        kept = suite.stop(keep_logs=not clean)
        remove_state(state_path)
        remove_outage(outages)
        print(stopped_line(kept), flush=True)
    return 0


def _live(suite: LocalSuite, state_path: Path) -> None:
    """Print the live log until Ctrl-C; keep the host running; stop when an emulator exits."""
    live = LiveLog()
    seen = 0
    supervisor = HostSupervisor(
        suite,
        outage_file(state_path),
        say=_say,
        on_new_host=lambda: write_state(suite_state(suite), state_path),
    )

    def tick() -> None:
        nonlocal seen
        for part in suite.emulators.crashed():
            raise SuitePartCrashedError(
                f"the {part.name} exited on its own (status {part.popen.returncode}); its data "
                f"is gone and everything else was stopped. Log {part.log_path}:\n"
                + tail(part.log_path)
            )
        if supervisor.check():
            seen = 0  # a new host numbers its invocations from 0
        if supervisor.host_down:
            return
        with contextlib.suppress(OSError, EmulatorError):  # the host going away: next tick
            items = suite.invocations(seen)
            for line in live.lines(items, time.time()):
                print(line, flush=True)
            if items:
                seen = items[-1]["seq"] + 1

    wait_for_interrupt(tick)
