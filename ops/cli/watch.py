"""`blueprint watch alerts|invalidations|rejections`: print what arrives (`ops.watch`)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from ops.cli.common import CliError, Run, one_line, run_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from ops.watch import Item
    from shared.settings import Settings

POLL_SECONDS: Final = 1.0
"""How long one pull waits, and the interval between two reads of the rejections."""

subscriber_factory: Any = None
"""The Pub/Sub subscriber to use (None: the process's shared one); unit tests put a fake here."""


def register(app: typer.Typer) -> None:
    """The `watch` command."""
    app.command("watch")(watch)


def check_what(text: str) -> str:
    """A typer callback: one of the things `watch` follows (bad usage, exit 2, otherwise)."""
    from ops.watch import KINDS  # noqa: PLC0415

    if text not in KINDS:
        raise typer.BadParameter(f"{text!r}: expected one of {', '.join(KINDS)}")
    return text


def watch(
    ctx: typer.Context,
    what: Annotated[
        str,
        typer.Argument(
            metavar="alerts|invalidations|rejections",
            callback=check_what,
            help="quota-alerts messages, config-invalidations messages, or new usage_rejections",
            show_default=False,
        ),
    ],
    seconds: Annotated[
        float | None,
        typer.Option(
            "--for", metavar="SECONDS", min=0, help="stop after this long (default: Ctrl-C)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Print each item as it arrives, one line each (--json: one JSON object per line),
    until --for SECONDS have passed or Ctrl-C. Alerts and invalidations come through a
    temporary subscription of the topic, deleted when the watch ends; rejections are the
    usage_rejections documents stored after the watch started."""
    from shared.settings import get_settings  # noqa: PLC0415

    run = run_of(ctx)
    settings = get_settings()
    deadline = None if seconds is None else time.monotonic() + seconds

    def emit(item: Item) -> None:
        if as_json:
            run.json(item.as_json())
        else:
            run.print(item.line())
        run.out.flush()  # a watch piped into grep or tee must show each line as it comes

    if what == "rejections":
        _rejections(run, settings, deadline, emit)
    else:
        _topic(what, settings, deadline, emit)


def _remaining(deadline: float | None) -> float:
    return POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - time.monotonic())


def _topic(
    what: str, settings: Settings, deadline: float | None, emit: Callable[[Item], None]
) -> None:
    from google.api_core import exceptions as gexc  # noqa: PLC0415

    from ops.watch import TopicWatch  # noqa: PLC0415
    from shared.clients import subscriber_client  # noqa: PLC0415

    topic = settings.quota_alerts_topic if what == "alerts" else settings.config_invalidations_topic
    kind = "alert" if what == "alerts" else "invalidation"
    subscriber = subscriber_factory() if subscriber_factory else subscriber_client()
    source = TopicWatch(subscriber, settings.project_id, topic, kind)
    try:
        with source:
            _say(f"watch {what}: listening on topic {topic} (temporary subscription {source.name})")
            while (wait := _remaining(deadline)) > 0:
                for item in source.poll(wait):
                    emit(item)
    except gexc.NotFound:
        raise CliError(
            f"watch {what}: no topic {topic!r} in project {settings.project_id!r} on "
            f"{_where(settings)}: `make run` creates the suite's topics"
        ) from None
    except (gexc.ServiceUnavailable, gexc.DeadlineExceeded) as exc:
        raise CliError(
            f"watch {what}: {_where(settings)} is not reachable ({type(exc).__name__}); start "
            "the emulators (`make emulators` or `make run`) and export the PUBSUB_EMULATOR_HOST "
            "they print"
        ) from None
    except gexc.GoogleAPICallError as exc:
        raise CliError(
            f"watch {what}: Pub/Sub refused ({type(exc).__name__}): {one_line(exc)}"
        ) from None


def _where(settings: Settings) -> str:
    host = settings.pubsub_emulator_host
    return f"the Pub/Sub emulator at PUBSUB_EMULATOR_HOST={host}" if host else "Pub/Sub"


def _rejections(
    run: Run, settings: Settings, deadline: float | None, emit: Callable[[Item], None]
) -> None:
    from ops.watch import RejectionPoll  # noqa: PLC0415

    since = datetime.now(UTC)
    source = RejectionPoll(run.client_factory(), since, settings)
    _say(f"watch rejections: new documents of {settings.usage_rejections_collection}")
    while True:
        started = time.monotonic()
        for item in source.poll():
            emit(item)
        wait = _remaining(deadline) - (time.monotonic() - started)
        if deadline is not None and time.monotonic() >= deadline:
            return
        if wait > 0:
            time.sleep(wait)


def _say(text: str) -> None:
    """A note for the person watching, on stderr: stdout carries only the items."""
    sys.stderr.write(f"{text}; Ctrl-C stops\n")
    sys.stderr.flush()
