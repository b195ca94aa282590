"""`blueprint usage replay`: deliver dead letters and chosen rejections again (`ops.replay`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ops.cli.common import EXIT_USAGE, CliError, check_document_id, run_of
from ops.cli.usage import usage_app

if TYPE_CHECKING:
    from rich.console import Console

    from ops.replay import ReplayCounts, ReplayItem

COMMAND = "usage replay"


def register(app: typer.Typer) -> None:
    """The `usage replay` command."""
    usage_app.command(
        "replay", help="Deliver dead letters (or rejections of --kind) to the usage service again."
    )(replay_command)


def check_kind(text: str) -> str:
    """A typer callback: a kind a rejection can have (bad usage, exit 2, otherwise)."""
    from ops.replay import KINDS  # noqa: PLC0415

    if text not in KINDS:
        raise typer.BadParameter(f"{text!r}: expected one of {', '.join(KINDS)}")
    return text


def parse_time(option: str, text: str | None) -> datetime | None:
    """`--since` or `--before` as a time: RFC 3339 with its offset (bad usage, exit 2,
    otherwise)."""
    if text is None:
        return None
    from shared.times import parse_rfc3339  # noqa: PLC0415

    value = parse_rfc3339(text)
    if value is None:
        raise CliError(
            f"{COMMAND}: {option} {text!r}: expected RFC 3339, e.g. 2026-12-01T00:00:00Z",
            EXIT_USAGE,
        )
    return value


def parse_span(since: str | None, before: str | None) -> tuple[datetime | None, datetime | None]:
    """`--since` and `--before` as times, the second after the first (bad usage, exit 2,
    otherwise: no document could be rejected at or after one and before the other)."""
    start, end = parse_time("--since", since), parse_time("--before", before)
    if start is not None and end is not None and end <= start:
        raise CliError(
            f"{COMMAND}: --before {before!r} is not after --since {since!r}: nothing is "
            "rejected in that span",
            EXIT_USAGE,
        )
    return start, end


def replay_command(
    ctx: typer.Context,
    kind: Annotated[
        str,
        typer.Option("--kind", callback=check_kind, help="the rejections' kind to replay"),
    ] = "dead_letter",
    customer: Annotated[
        str | None,
        typer.Option("--customer", callback=check_document_id, help="only this customer's"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="RFC3339", help="only those rejected at or after this time"
        ),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option("--before", metavar="RFC3339", help="only those rejected before this time"),
    ] = None,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=1000, help="documents read per query")
    ] = 100,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would be replayed; write nothing")
    ] = False,
    again: Annotated[
        bool, typer.Option("--again", help="replay documents an earlier replay marked too")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object: counts, items")] = False,
) -> None:
    """Deliver stored usage messages again through the usage service, exactly once: each
    ends recorded, duplicate (recorded before), still_rejected (new kind and reason) or
    skipped; each replayed document is marked (replayed_at, replay_outcome)."""
    from ops.replay import ReplayCounts, ReplayError, replay  # noqa: PLC0415

    start, end = parse_span(since, before)
    run = run_of(ctx)
    client = run.client_factory()
    counts = ReplayCounts()
    try:
        items = [
            counts.add(item)
            for item in replay(
                client,
                kind=kind,
                customer_id=customer,
                since=start,
                before=end,
                page_size=page_size,
                dry_run=dry_run,
                again=again,
            )
        ]
    except ReplayError as exc:
        raise CliError(f"{COMMAND}: {exc}", EXIT_USAGE) from None
    if as_json:
        run.json(
            {
                "kind": kind,
                "customer_id": customer,
                "since": start.isoformat() if start else None,
                "before": end.isoformat() if end else None,
                "dry_run": dry_run,
                "again": again,
                "counts": counts.as_json(),
                "items": [item.as_json() for item in items],
            }
        )
        return
    render(items, counts, kind, dry_run, run.console())


def _detail(item: ReplayItem) -> str:
    if item.record_id is not None:
        return f"usage_tracking/{item.record_id}"
    if item.kind is not None:
        where = f" (usage_rejections/{item.rejection_id})" if item.rejection_id else ""
        return f"{item.reason}{where}"
    return item.reason or ""


def render(
    items: list[ReplayItem], counts: ReplayCounts, kind: str, dry_run: bool, console: Console
) -> None:
    """The outcomes as a rich table, then one summary line."""
    from rich import box  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    title = f"{'Dry run: ' if dry_run else ''}replay of {kind} rejections: {len(items)}"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("document", "customer", "event", "outcome", "record / new rejection / why"):
        table.add_column(name, overflow="fold")
    for item in items:
        table.add_row(
            item.doc_id,
            item.customer_id or "",
            item.event_id or "",
            item.outcome.value,
            _detail(item),
        )
    console.print(table)
    from ops.replay import Outcome  # noqa: PLC0415

    names = (
        (Outcome.WOULD_REPLAY, Outcome.SKIPPED)
        if dry_run
        else (Outcome.RECORDED, Outcome.STILL_REJECTED, Outcome.DUPLICATE, Outcome.SKIPPED)
    )
    shown = ", ".join(f"{name.value} {counts.by_outcome[name]}" for name in names)
    console.print(f"{COMMAND}: {shown}")
