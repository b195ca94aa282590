"""One process serving every function of the function table with functions-framework.

`python -m devstack.functions_host --port P --relay-base http://127.0.0.1:P`

- `/<function-name>/...` is the functions-framework app of that function (`create_app`), so a
  Pub/Sub push to `/<name>/projects/{p}/topics/{t}` reaches it with the topic path intact.
- `/functions/projects/{p}/triggers/{trigger-id}` is the relay the Firestore emulator calls
  (`--functions_emulator`): it base64-decodes the body, fixes `ce-source` and forwards a binary
  CloudEvent over HTTP to `/<trigger-id>/` (trigger id = function name), answering with the
  function's status.
- A Pub/Sub push to a Pub/Sub function is turned into the binary CloudEvent Eventarc sends in
  production (`push_to_cloud_event`: data = the whole `MessagePublishedData`, subscription
  included), whatever the body holds, so the function itself classifies a malformed envelope.
  functions-framework's own conversion would drop `subscription` and answer 400/500 itself
  for a body that is not a well-formed push envelope (redelivered forever).
- `/_devstack/invocations?since=N` lists what ran (function, document, decision, duration,
  status); one readable line per invocation also goes to stdout.

Each function's `decision` is taken from the structured log line it writes with a `decision`
field (see shared.logs); nothing in the functions knows about this host.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import io
import json
import logging
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devstack.decisions import decision_of, fold_activity_of
from devstack.push import Backoff, local_delivery, pubsub_push
from functions.table import FUNCTIONS, TriggerKind
from shared import logs
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
MAIN_SOURCE = ROOT / "functions" / "main.py"
RELAY_PREFIX = "/functions/projects/"
EMPTY_TRIGGER_PREFIX = "empty-endpoint"
"""Trigger ids starting with this are answered at once by the relay (benchmark baseline)."""
# Headers the emulator sends that must not be forwarded as-is.
_HOP_HEADERS = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class InvocationLog:
    """Thread-safe record of every function invocation, plus the line printer."""

    def __init__(self, echo: bool = True, keep_requests: int = 2000) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []
        self._requests: dict[int, tuple[str, dict[str, str], bytes]] = {}
        self._keep = keep_requests
        self._local = threading.local()
        self.echo = echo

    def begin(self) -> None:
        """Start collecting decisions logged by this thread's function call."""
        self._local.decisions = []
        self._local.fold = None

    def fold_logged(self, counts: dict[str, int]) -> None:
        """The fold logged its counts in this thread (kept with the invocation)."""
        if getattr(self._local, "decisions", None) is not None:
            self._local.fold = counts

    def decision_logged(self, decision: str) -> None:
        """A function logged a decision in this thread."""
        decisions = getattr(self._local, "decisions", None)
        if decisions is not None:
            decisions.append(decision)

    def end(self, entry: dict[str, Any], request: tuple[str, dict[str, str], bytes]) -> None:
        """Record one finished invocation (and its request, so it can be replayed)."""
        decisions = getattr(self._local, "decisions", None) or []
        entry["decision"] = ",".join(decisions) or ("-" if entry["status"] < 300 else "error")
        fold = getattr(self._local, "fold", None)
        if fold is not None:
            entry["fold"] = fold
        self._local.decisions = self._local.fold = None
        with self._lock:
            entry["seq"] = len(self._items)
            self._items.append(entry)
            self._requests[entry["seq"]] = request
            self._requests.pop(entry["seq"] - self._keep, None)
        if self.echo:
            stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
            status = "" if entry["status"] < 300 else f"  HTTP {entry['status']}"
            print(
                f"{stamp}  {entry['function']:<26} {entry['document'] or '-':<40} "
                f"{entry['decision']:<22} {entry['duration_ms']:7.1f} ms{status}",
                flush=True,
            )

    def request(self, seq: int) -> tuple[str, dict[str, str], bytes] | None:
        """(path, headers, body) of a recorded invocation, if still kept."""
        with self._lock:
            return self._requests.get(seq)

    def since(self, seq: int) -> list[dict[str, Any]]:
        """Invocations with sequence number >= seq."""
        with self._lock:
            return list(self._items[seq:])


class _DecisionHandler(logging.Handler):
    """Feeds `decision` fields of the suite's log lines into the invocation log."""

    def __init__(self, log: InvocationLog) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        decision = decision_of(record)
        if decision:
            self.log.decision_logged(decision)
        fold = fold_activity_of(record)
        if fold is not None:
            self.log.fold_logged(fold)


def _document_of(environ: dict[str, Any]) -> str:
    """What the invocation is about: the document, or `topic T msg ID` for a Pub/Sub push."""
    document = environ.get("HTTP_CE_DOCUMENT") or ""
    if not document:
        subject = str(environ.get("HTTP_CE_SUBJECT") or "")
        document = subject.removeprefix("documents/")
    if document:
        return str(document)
    # A Pub/Sub push: the CloudEvent id is the message id (see push_to_cloud_event).
    topic = str(environ.get("PATH_INFO", "")).rsplit("/", 1)[-1]
    return f"{topic} msg {environ.get('HTTP_CE_ID') or '?'}"


def record_invocations(name: str, app: WsgiApp, log: InvocationLog) -> WsgiApp:
    """Wrap a function's WSGI app so each request is timed and recorded."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status_holder: list[int] = [0]

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            status_holder[0] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_CE_")
        }
        headers["content-type"] = str(environ.get("CONTENT_TYPE", ""))
        document = _document_of(environ)
        started = time.perf_counter()
        log.begin()
        try:
            result = list(app(environ, capture))
        finally:
            log.end(
                {
                    "function": name,
                    "document": document,
                    "event_id": environ.get("HTTP_CE_ID", ""),
                    "path": environ.get("PATH_INFO", ""),
                    "status": status_holder[0] or 500,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "time": time.time(),
                },
                (str(environ.get("PATH_INFO", "/")), headers, body),
            )
        return result

    return wrapped


def since_of(value: str | None) -> int | Response:
    """The `since` query parameter, or a 400 saying what was expected."""
    text = "0" if value is None else value
    if not text.isdigit():
        return Response(
            f"since={value!r}: expected a non-negative integer (an invocation sequence number, "
            "e.g. the value of `mark()`)\n",
            status=400,
            mimetype="text/plain",
        )
    return int(text)


class Relay:
    """The `--functions_emulator` endpoint: base64 body -> binary CloudEvent to the function."""

    def __init__(self, base_url: str, known: set[str], log: InvocationLog | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.known = known
        self.log = log

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """Decode and forward one delivery from the Firestore emulator."""
        translated = self.translate(request.path, dict(request.headers.items()), request.get_data())
        if isinstance(translated, Response):
            return translated
        url, headers, body = translated
        if url is None:  # the empty endpoint (benchmark baseline): answer at once
            self._record_empty(headers)
            return Response(b"", status=204)
        req = urllib.request.Request(  # noqa: S310 -- local http only
            url, data=body, method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
                return Response(resp.read(), status=resp.status)
        except urllib.error.HTTPError as exc:
            return Response(exc.read(), status=exc.code)

    def translate(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> Response | tuple[str | None, dict[str, str], bytes]:
        """(function URL, headers, body) for one emulator delivery; URL None = empty endpoint."""
        # /functions/projects/{p}/triggers/{id}
        parts = path.strip("/").split("/")
        if len(parts) != 5 or parts[3] != "triggers":
            return Response(f"unexpected relay path {path}", status=404)
        project, trigger = parts[2], parts[4]
        if trigger not in self.known and not trigger.startswith(EMPTY_TRIGGER_PREFIX):
            return Response(f"no function named {trigger}", status=404)
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            body = raw  # already bytes (a future emulator may send them as such)
        out = {k.lower(): v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
        out["ce-source"] = fix_source(out.get("ce-source", ""), project)
        out["content-type"] = "application/protobuf"
        if trigger.startswith(EMPTY_TRIGGER_PREFIX):
            out["x-trigger"] = trigger
            return None, out, body
        return f"{self.base_url}/{trigger}/", out, body

    def _record_empty(self, headers: dict[str, str]) -> None:
        if self.log is None:
            return
        self.log.begin()
        self.log.decision_logged("empty-endpoint")
        self.log.end(
            {
                "function": headers.get("x-trigger", EMPTY_TRIGGER_PREFIX),
                "document": headers.get("ce-document", ""),
                "event_id": headers.get("ce-id", ""),
                "path": "",
                "status": 204,
                "duration_ms": 0.0,
                "time": time.time(),
            },
            ("/", {}, b""),
        )


def fix_source(source: str, project: str) -> str:
    """The emulator doubles `projects/` in ce-source; production sends it once."""
    fixed = source.replace("/projects/projects/", "/projects/")
    if not fixed:
        fixed = f"//firestore.googleapis.com/projects/{project}/databases/(default)"
    return fixed


def build_app(base_url: str, log: InvocationLog, project: str | None = None) -> WsgiApp:
    """The dispatcher: relay, one functions-framework app per function, the invocation API."""
    import functions_framework  # noqa: PLC0415 -- heavy, only in this process

    project = project or get_settings().project_id
    apps: dict[str, WsgiApp] = {}
    for spec in FUNCTIONS:
        app = functions_framework.create_app(  # type: ignore[no-untyped-call]
            spec.entry_point, str(MAIN_SOURCE), "cloudevent"
        )
        recorded = record_invocations(spec.name, app, log)
        if spec.trigger is TriggerKind.PUBSUB:
            recorded = pubsub_push(project, recorded, Backoff(local_delivery(spec)))
        apps[spec.name] = recorded
    relay = Relay(base_url, {s.name for s in FUNCTIONS if s.trigger is TriggerKind.FIRESTORE}, log)

    def replay(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """POST /_devstack/replay/<seq>: send a recorded request again (a redelivery)."""
        seq = int(str(environ["PATH_INFO"]).rsplit("/", 1)[-1])
        entry = log.since(seq)[:1]
        recorded = log.request(seq)
        if not entry or recorded is None:
            return Response(f"no recorded invocation {seq}", status=404)(environ, start_response)
        path, headers, body = recorded
        req = urllib.request.Request(  # noqa: S310 -- local http only
            f"{base_url}/{entry[0]['function']}{path}", data=body, method="POST", headers=headers
        )
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(req, timeout=60).close()  # noqa: S310
        mine = [i for i in log.since(seq + 1) if i["event_id"] == entry[0]["event_id"]]
        answer = json.dumps(mine[-1] if mine else {}).encode()
        return Response(answer, mimetype="application/json")(environ, start_response)

    def invocations(since: str | None) -> Response:
        """GET /_devstack/invocations?since=N: what ran, as JSON (400 for a bad N)."""
        seq = since_of(since)
        if isinstance(seq, Response):
            return seq
        return Response(json.dumps(log.since(seq)).encode(), mimetype="application/json")

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(RELAY_PREFIX):
            return relay(environ, start_response)
        if path.startswith("/_devstack/replay/"):
            return replay(environ, start_response)
        if path.startswith("/_devstack/invocations"):
            return invocations(Request(environ).args.get("since"))(environ, start_response)
        if path in ("/", "/_devstack/ready"):
            return Response(b"ok")(environ, start_response)
        name, _, rest = path.lstrip("/").partition("/")
        app = apps.get(name)
        if app is None:
            return Response(f"no function at {path}", status=404)(environ, start_response)
        environ["SCRIPT_NAME"] = str(environ.get("SCRIPT_NAME", "")) + "/" + name
        environ["PATH_INFO"] = "/" + rest
        return app(environ, start_response)

    return dispatch


def main(argv: list[str] | None = None) -> int:
    """Serve all functions until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m devstack.functions_host")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--quiet", action="store_true", help="no line per invocation")
    args = parser.parse_args(argv)
    log = InvocationLog(echo=not args.quiet)
    logs.add_observer(_DecisionHandler(log))
    app = build_app(f"http://{args.host}:{args.port}", log)
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"functions host listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
