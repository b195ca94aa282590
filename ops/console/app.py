"""The billing console's Flask app: GET routes only, each a view model (`ops.console.reads`)
rendered by a Jinja template.

`create_app(client_factory=..., clock=...)` builds it (tests and devstack pass their own client
and clock); `serve(port)` runs it locally (`blueprint console`); in Cloud Run a WSGI server runs
`create_app()` (docs/console.md). Firestore failing shows a banner with HTTP 503, an unknown
customer a 404 page; no page shows a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from flask import Flask, Response, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from ops.console import reads
from ops.console.models import Banner, Sort
from ops.paging import ListingError
from shared.errors import BlueprintError
from shared.pricing import round_cents
from shared.settings import Settings, get_settings
from shared.times import MONTH_RE, month_of, parse_rfc3339

HERE: Final = Path(__file__).parent
PROBE_DOCUMENT: Final = "blueprint-console-reachability-probe"
"""A customer id nobody uses: read once per page, without retries, to see Firestore answer."""
Clock = Callable[[], datetime]


class UnreachableError(Exception):
    """Firestore did not answer; the message says where and why."""


def _default_client(settings: Settings) -> Any:
    from google.cloud import firestore  # noqa: PLC0415 - heavy: only when the app needs it

    return firestore.Client(project=settings.project_id)


def _where(settings: Settings) -> str:
    if settings.firestore_emulator_host:
        return settings.firestore_emulator_host
    return f"project {settings.project_id}"


def create_app(
    client_factory: Callable[[], Any] | None = None,
    *,
    settings: Settings | None = None,
    clock: Clock | None = None,
) -> Flask:
    """The console app. The client is made on the first request and kept."""
    app = Flask(
        __name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static")
    )
    app.url_map.strict_slashes = False
    config = settings or get_settings()
    now: Clock = clock or (lambda: datetime.now(UTC))
    holder: dict[str, Any] = {}
    app.jinja_env.filters["amount"] = _amount
    app.jinja_env.filters["dollars"] = _dollars

    def client() -> Any:
        if "client" not in holder:
            holder["client"] = (client_factory or (lambda: _default_client(config)))()
        db = holder["client"]
        _probe(db, config)
        return db

    @app.context_processor
    def common() -> dict[str, Any]:
        return {"current_month": month_of(now()), "where": _where(config)}

    @app.get("/")
    def customers() -> str:
        sort = Sort.parse(request.args.get("sort"))
        view = reads.customers_view(
            client(),
            now=now(),
            cursor=request.args.get("cursor") or None,
            prefix=request.args.get("q", "").strip() or None,
            sort=sort,
            settings=config,
        )
        return render_template("customers.html", view=view)

    @app.get("/customers/<customer_id>")
    def customer(customer_id: str) -> str:
        _document_id(customer_id)
        month = _month(request.args.get("month"), now())
        view = reads.customer_view(
            client(),
            customer_id,
            month=month,
            now=now(),
            cursor=request.args.get("cursor") or None,
            settings=config,
        )
        if view is None:
            abort(
                404,
                f"No customer {customer_id!r}: no customers/{customer_id} document and "
                f"no usage records in {month}.",
            )
        return render_template("customer.html", view=view)

    @app.get("/problems")
    def problems() -> str:
        since = _since(request.args.get("since"), now())
        view = reads.problems_view(
            client(),
            since=since,
            kind=request.args.get("kind") or None,
            cursor=request.args.get("cursor") or None,
            settings=config,
        )
        return render_template("problems.html", view=view)

    @app.get("/months/<month>")
    def month(month: str) -> str:
        picked = _month(month, now())
        view = reads.month_view(
            client(),
            picked,
            now=now(),
            cursor=request.args.get("cursor") or None,
            prefix=request.args.get("q", "").strip() or None,
            settings=config,
        )
        return render_template("month.html", view=view)

    @app.get("/months/<month>/export.<fmt>")
    def month_export(month: str, fmt: str) -> Response:
        if fmt not in ("csv", "jsonl"):
            abort(404, f"No export format {fmt!r}: csv or jsonl.")
        picked = _month(month, now())
        text = reads.export_text(client(), picked, fmt, now=now(), settings=config)
        kind = "text/csv" if fmt == "csv" else "application/x-ndjson"
        name = f"usage-{month}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(text, mimetype=kind, headers=headers)

    @app.get("/month")
    def month_picked() -> WerkzeugResponse:
        picked = _month(request.args.get("month"), now())
        return redirect(url_for("month", month=picked))

    _errors(app, config)
    return app


def _amount(value: Decimal) -> str:
    """An exact amount as the export writes it (`1.50` -> `1.5`, zero -> `0`)."""
    return format(value.normalize(), "f") if value else "0"


def _dollars(value: Decimal) -> str:
    """Dollars to the cent, from the exact amount (`1.5` -> `1.50`; never through a float)."""
    return format(round_cents(value), "f")


def _probe(db: Any, settings: Settings) -> None:
    """One read without retries within the Firestore deadline: the client's own retries would
    hold an unreachable emulator's page for minutes before saying anything."""
    from google.api_core import exceptions as gexc  # noqa: PLC0415

    ref = db.collection(settings.customers_collection).document(PROBE_DOCUMENT)
    try:
        ref.get(retry=None, timeout=settings.firestore_timeout_seconds)
    except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError) as exc:
        raise UnreachableError(f"{type(exc).__name__}: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _document_id(text: str) -> str:
    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415

    from shared.types import DocumentId  # noqa: PLC0415

    try:
        return str(TypeAdapter(DocumentId).validate_python(text))
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        abort(400, f"customer id {text!r}: {reason}.")


def _month(text: str | None, now: datetime) -> str:
    if not text:
        return month_of(now)
    if not MONTH_RE.match(text):
        abort(400, f"month={text!r}: expected YYYY-MM, for example 2026-01.")
    if text > month_of(now):
        abort(400, f"month={text}: a future month has no usage yet.")
    return text


def _since(text: str | None, now: datetime) -> datetime:
    if not text:
        return reads.default_since(now)
    try:
        return datetime.combine(date.fromisoformat(text), time(), UTC)
    except ValueError:
        parsed = parse_rfc3339(text)
    if parsed is None:
        abort(400, f"since={text!r}: expected a day (2026-01-31) or an RFC 3339 time.")
    return parsed


def _errors(app: Flask, settings: Settings) -> None:
    from google.api_core import exceptions as gexc  # noqa: PLC0415
    from google.auth.exceptions import GoogleAuthError  # noqa: PLC0415
    from werkzeug.exceptions import HTTPException  # noqa: PLC0415

    def page(status: int, title: str, banner: Banner) -> tuple[str, int]:
        return render_template("error.html", title=title, banner=banner), status

    @app.errorhandler(UnreachableError)
    def unreachable(exc: UnreachableError) -> tuple[str, int]:
        text = f"Firestore is unreachable at {_where(settings)}: {exc}"
        return page(503, "Firestore unreachable", Banner(text))

    @app.errorhandler(gexc.GoogleAPICallError)
    @app.errorhandler(gexc.RetryError)
    def failed(exc: Exception) -> tuple[str, int]:
        text = f"Firestore at {_where(settings)} failed: {type(exc).__name__}: {_short(exc)}"
        return page(503, "Firestore failed", Banner(text))

    @app.errorhandler(GoogleAuthError)
    def no_credentials(exc: GoogleAuthError) -> tuple[str, int]:
        text = (
            f"Firestore at {_where(settings)} cannot be read: the credentials are missing or "
            f"invalid ({type(exc).__name__}: {_short(exc)})"
        )
        return page(503, "Firestore failed", Banner(text))

    @app.errorhandler(ListingError)
    @app.errorhandler(BlueprintError)
    def bad_request(exc: Exception) -> tuple[str, int]:
        return page(400, "Bad request", Banner(_short(exc), level="warn"))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int, list[tuple[str, str]]]:
        status = exc.code or 500
        body, _ = page(status, exc.name, Banner(exc.description or exc.name, level="warn"))
        # Its own headers, such as a 405's Allow, but not its Content-Type: the page is HTML.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return body, status, headers


def serve(port: int = 8080, host: str = "127.0.0.1", app: Flask | None = None) -> None:
    """Run the console with werkzeug's threaded server until interrupted (local use; Cloud Run
    runs a WSGI server, docs/console.md)."""
    from werkzeug.serving import run_simple  # noqa: PLC0415

    run_simple(host, port, app or create_app(), threaded=True, use_reloader=False)


__all__ = ["create_app", "serve"]
