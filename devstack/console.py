"""The billing console beside the local suite: `make run` serves it on a free port."""

from __future__ import annotations

import logging
import threading
from typing import Any

from devstack.emulators import LOCALHOST, free_port
from shared.settings import Settings


class LocalConsole:
    """`ops.console` on werkzeug's threaded server, in a daemon thread, until `stop()`."""

    def __init__(self, settings: Settings) -> None:
        from werkzeug.serving import make_server  # noqa: PLC0415 - only `make run` needs it

        from ops.console.app import create_app  # noqa: PLC0415

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request lines in the live log
        self.port = free_port()
        self._server: Any = make_server(
            LOCALHOST, self.port, create_app(settings=settings), threaded=True
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="console", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
