"""Local networking for the harness, stdlib only (no extra dependency): ports and HTTP."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from typing import Final

LOCALHOST: Final = "127.0.0.1"


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def http(
    method: str, url: str, body: bytes | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """One HTTP request; returns (status, body) for any status, raises OSError when unreachable."""
    req = urllib.request.Request(url, data=body, method=method)  # noqa: S310 -- local http only
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
