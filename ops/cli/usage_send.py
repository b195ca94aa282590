"""`blueprint usage send`: publish one usage event, as the pipeline does (`shared.publisher`).

Every value is checked here and a bad one is said in the CLI's words (the option, the value
given, what is expected): the model's own messages are written for producers' programs, not for
a person at a prompt. Whatever the model still refuses is said the same way.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from ops.cli.common import EXIT_USAGE, CliError, check_document_id, one_line, run_of, short
from ops.cli.usage import usage_app

if TYPE_CHECKING:
    from shared.errors import FieldError

COMMAND: Final = "usage send"
DEFAULT_SCENE: Final = "cli-scene"
"""The scene an event sent by hand belongs to unless --scene says otherwise."""

EXPECTED: Final[dict[str, tuple[str, str]]] = {
    "customer_id": ("--customer", "a document id (no '/', not '__...__', not empty)"),
    "scene_id": ("--scene", "a document id (no '/', not '__...__', not empty)"),
    "action": ("--action", "an action name like scene_generated (a-z, 0-9, '_', '.', '-')"),
    "timestamp": ("--timestamp", "RFC 3339 with an offset, e.g. 2026-12-01T10:00:00Z"),
    "event_id": ("--event-id", "1 to 256 characters"),
    "episodes_generated": ("--episodes", "a whole number from 0 to 1000000000000"),
    "compute_minutes": ("--minutes", "a finite number >= 0"),
    "storage_gb": ("--gb", "a finite number >= 0"),
}
"""Each event field: the option that sets it and what it takes, in the CLI's words."""

publisher_factory: Any = None
"""The Pub/Sub publisher to use (None: the process's shared one); unit tests put a fake here."""


def register(app: typer.Typer) -> None:
    """The `usage send` command."""
    usage_app.command("send")(send)


_WHOLE: Final = re.compile(r"-?[0-9]+", re.ASCII)
_AMOUNT: Final = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", re.ASCII)


def bad(field: str, value: object) -> CliError:
    """The one-line usage error for an event field's bad value."""
    option, expected = EXPECTED[field]
    return CliError(f"{COMMAND}: {option} {short(value)}: expected {expected}", EXIT_USAGE)


def whole(field: str, text: str | None) -> int | None:
    """A count option: a whole number (its range is the model's, checked with the event)."""
    if text is None:
        return None
    if not _WHOLE.fullmatch(text):  # int() also takes "1_000", " 7\n" and other scripts' digits
        raise bad(field, text)
    return int(text)


def amount(field: str, text: str | None) -> float | None:
    """An amount option: a finite number (its sign is the model's, checked with the event)."""
    if text is None:
        return None
    if not _AMOUNT.fullmatch(text):  # float() also takes "1_0", "nan" and other scripts' digits
        raise bad(field, text)
    value = float(text)
    if not math.isfinite(value):
        raise bad(field, text)
    return value


def when(text: str | None, now: datetime | None = None) -> datetime:
    """`--timestamp` as a time (default: now, UTC)."""
    if text is None:
        return now or datetime.now(UTC)
    from shared.times import parse_rfc3339  # noqa: PLC0415

    value = parse_rfc3339(text)
    if value is None:
        raise bad("timestamp", text)
    return value


def new_event_id(now: datetime) -> str:
    """A fresh idempotency key, readable: `cli-YYYYMMDDTHHMMSSZ-` and 8 hex digits."""
    return f"cli-{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def explain(errors: list[FieldError]) -> CliError:
    """The model's refusal in the CLI's words: each field's option, value and expectation."""
    parts = []
    for error in errors:
        option, expected = EXPECTED.get(error.field, (error.field, "a valid value"))
        parts.append(f"{option} {short(error.value)}: expected {expected}")
    return CliError(f"{COMMAND}: " + "; ".join(parts), EXIT_USAGE)


def send(
    ctx: typer.Context,
    customer: Annotated[
        str,
        typer.Option(
            "--customer", callback=check_document_id, help="customer id", show_default=False
        ),
    ],
    action: Annotated[
        str,
        typer.Option(
            "--action", help="e.g. scene_generated, episodes_generated", show_default=False
        ),
    ],
    scene: Annotated[
        str, typer.Option("--scene", callback=check_document_id, help="scene id")
    ] = DEFAULT_SCENE,
    episodes: Annotated[
        str | None, typer.Option("--episodes", metavar="N", help="episodes generated")
    ] = None,
    minutes: Annotated[
        str | None, typer.Option("--minutes", metavar="M", help="compute minutes used")
    ] = None,
    gb: Annotated[str | None, typer.Option("--gb", metavar="G", help="storage GB used")] = None,
    event_id: Annotated[
        str | None,
        typer.Option(
            "--event-id", metavar="ID", help="idempotency key (default: a new one, printed)"
        ),
    ] = None,
    timestamp: Annotated[
        str | None,
        typer.Option("--timestamp", metavar="RFC3339", help="when it happened (default: now)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the result as one JSON object")] = False,
) -> None:
    """Publish one usage event on the usage-events topic; prints its message id and event id.

    The event is recorded by on-usage-event (with `make run` running): find it with
    `blueprint inspect usage --customer ID --month YYYY-MM`, or its rejection with
    `blueprint inspect rejections`."""
    from shared.errors import BlueprintError  # noqa: PLC0415
    from shared.models import UsageEvent, document_errors  # noqa: PLC0415
    from shared.publisher import publish_event  # noqa: PLC0415
    from shared.times import month_of  # noqa: PLC0415

    now = datetime.now(UTC)
    data: dict[str, Any] = {
        "schema_version": 1,
        "event_id": new_event_id(now) if event_id is None else event_id,
        "customer_id": customer,
        "scene_id": scene,
        "action": action,
        "timestamp": when(timestamp, now),
        "episodes_generated": whole("episodes_generated", episodes),
        "compute_minutes": amount("compute_minutes", minutes),
        "storage_gb": amount("storage_gb", gb),
    }
    data = {k: v for k, v in data.items() if v is not None}
    errors = document_errors(UsageEvent, data)
    if errors:
        raise explain(errors)
    run = run_of(ctx)
    event = UsageEvent.model_validate(data)
    try:
        message_id = publish_event(event, client=publisher_factory() if publisher_factory else None)
    except BlueprintError as exc:  # PublishError (down, no answer) or PermanentError (refused)
        raise CliError(f"{COMMAND}: {one_line(exc)}") from None
    month = month_of(event.timestamp)
    if as_json:
        run.json(
            {
                "message_id": message_id,
                "event_id": event.event_id,
                "customer_id": event.customer_id,
                "scene_id": event.scene_id,
                "action": event.action,
                "timestamp": event.timestamp.isoformat().replace("+00:00", "Z"),
            }
        )
        return
    run.print(f"message_id: {message_id}")
    run.print(f"event_id: {event.event_id}")
    run.print(
        f"see its record: blueprint inspect usage --customer {event.customer_id} --month {month}"
    )
    run.print(f"or, if it was refused: blueprint inspect rejections --customer {event.customer_id}")
