"""What the console's integration tests share: the console served on a free port, headless
Chromium (Debian's `chromium` and `chromium-driver`), and `blueprint` run in-process."""

from __future__ import annotations

import io
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ops.cli import main
from ops.console.app import create_app
from shared.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1600",
)
INSTALL = (
    "headless Chromium is missing: install Debian's browser and its driver with "
    "`apt-get update && apt-get install -y chromium chromium-driver` (.ci/run does it in CI)"
)


@contextmanager
def served(
    client: Any, settings: Settings, clock: Callable[[], datetime] | None = None
) -> Iterator[str]:
    """The console on 127.0.0.1 and a free port, in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    app = create_app(lambda: client, settings=settings, clock=clock)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def browser(profile: Path) -> Any:
    """Headless Chromium driven by Debian's chromedriver; fails (never skips) when missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    if missing:
        pytest.fail(f"{INSTALL} (not found: {', '.join(missing)})")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    return driver


def blueprint(argv: list[str], client: Any) -> str:
    """`blueprint argv` in-process on `client`; its stdout (exit status 0 asserted)."""
    out = io.StringIO()
    code = main(argv, client_factory=lambda: client, out=out)
    assert code == 0, f"blueprint {' '.join(argv)} exited {code}"
    return out.getvalue()
