"""`blueprint console` as people run it: a process serving the pages until stopped, or one
error line when Firestore does not answer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from devstack.emulators import LOCALHOST, Emulators, free_port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - a local server
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_blueprint_console_serves_the_pages(seeded: Emulators) -> None:
    port = free_port()
    console = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "console", "--port", str(port)],
        env={**os.environ, **seeded.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, page = _get(f"http://{LOCALHOST}:{port}/")
                break
            except urllib.error.URLError:
                if console.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"the console did not start: {console.stderr.read() if console.stderr else ''}"
                    )
                time.sleep(0.3)
        assert status == 200
        assert 'data-customer="lab_001"' in page
        assert _get(f"http://{LOCALHOST}:{port}/customers/lab_001")[0] == 200
    finally:
        console.terminate()
        console.wait(timeout=30)


def test_blueprint_console_says_on_one_line_that_firestore_is_unreachable() -> None:
    nobody = f"{LOCALHOST}:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", "console", "--port", str(free_port())],
        env={**os.environ, "FIRESTORE_EMULATOR_HOST": nobody, "GOOGLE_CLOUD_PROJECT": "demo-x"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        line for line in done.stderr.strip().splitlines() if line.startswith("blueprint: error:")
    ]
    assert f"the Firestore emulator at {nobody} is not reachable" in done.stderr
