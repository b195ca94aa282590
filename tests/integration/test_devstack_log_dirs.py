"""The emulators' temporary log directory: removed on a clean stop, kept (and said) after a crash."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from devstack.emulators import start_emulators


def test_a_clean_stop_removes_the_log_directory() -> None:
    pair = start_emulators("demo-log-dirs")
    logs = pair.log_dir
    assert (logs / "firestore.log").exists()
    assert pair.stop() is None
    assert not logs.exists()
    assert pair.stop() is None  # idempotent


def test_after_a_crash_the_logs_are_kept_and_their_place_returned() -> None:
    pair = start_emulators("demo-log-dirs")
    try:
        os.killpg(pair.pubsub.pgid, signal.SIGKILL)  # the Pub/Sub emulator dies on its own
        deadline = time.monotonic() + 30
        while pair.pubsub.popen.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pair.crashed() == [pair.pubsub]
        kept = pair.stop()
        assert kept == pair.log_dir
        assert (kept / "pubsub.log").exists()
    finally:
        pair.stop()
        shutil.rmtree(pair.log_dir, ignore_errors=True)


def test_an_error_inside_the_context_keeps_the_logs() -> None:
    with pytest.raises(RuntimeError), start_emulators("demo-log-dirs") as pair:
        raise RuntimeError("a failing test")
    try:
        assert pair.log_dir.exists()
    finally:
        shutil.rmtree(pair.log_dir, ignore_errors=True)
