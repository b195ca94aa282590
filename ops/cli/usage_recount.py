"""`blueprint usage recount`: count a month again from its records, compare with its summaries
and correct them (`functions.fold.recount`, the same code as the fold's month close)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from ops.cli.common import MonthOption, check_document_id, not_future, run_of
from ops.cli.usage import usage_app

COMMAND = "usage recount"


def register(app: typer.Typer) -> None:
    """The `usage recount` command."""
    usage_app.command(
        "recount", help="Count a month again from its records and correct its summaries."
    )(recount_command)


def recount_command(
    ctx: typer.Context,
    month: MonthOption,
    customer: Annotated[
        str | None,
        typer.Option("--customer", callback=check_document_id, help="only this customer's"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="compare only: change nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Recount every customer-month of --month (or one customer's) from its records."""
    from functions.fold.adapters import FirestoreFoldRepository, PubSubAlertPublisher  # noqa: PLC0415
    from functions.fold.customer import Run  # noqa: PLC0415
    from functions.fold.ports import FoldCounts  # noqa: PLC0415
    from functions.fold.recount import recount_month  # noqa: PLC0415
    from shared.firestore_values import server_timestamp  # noqa: PLC0415
    from shared.settings import get_settings  # noqa: PLC0415

    not_future(month, "usage recount", "recounted")
    run = run_of(ctx)
    settings = get_settings()
    repo = FirestoreFoldRepository(settings, run.client_factory())
    now = datetime.now(UTC)
    counts = FoldCounts()
    found = recount_month(
        repo,
        PubSubAlertPublisher(settings),
        month,
        Run(now, f"recount-{now:%Y%m%dT%H%M%S}", server_timestamp()),
        counts,
        customer,
        dry_run=dry_run,
    )
    rows: list[dict[str, Any]] = [
        {
            "customer_id": r.customer_id,
            "month": r.month,
            "summary": r.summary.as_fields(),
            "records": r.records.as_fields(),
            "differs": r.differs,
            "corrected": r.corrected,
        }
        for r in found
    ]
    differ = sum(r["differs"] for r in rows)
    if as_json:
        run.json(
            {
                "month": month,
                "dry_run": dry_run,
                "recounted": len(rows),
                "differ": differ,
                "customers": rows,
            }
        )
        return
    for row in rows:
        if row["differs"]:
            summary, records = row["summary"], row["records"]
            run.print(
                f"{row['customer_id']} {month}: summary {summary['records']} records, "
                f"{summary['scenes_generated']} scenes, {summary['cost_cents']} cents; records "
                f"{records['records']}, {records['scenes_generated']}, {records['cost_cents']}"
                + (" (corrected)" if row["corrected"] else " (dry run: not corrected)")
            )
    what = f"customer {customer}" if customer else "every customer"
    if not rows:
        run.print(f"{month}: no month summary of {what} to recount")
        return
    verb = "would correct" if dry_run else "corrected"
    run.print(f"{month}: recounted {len(rows)} customer-months of {what}; {verb} {differ}")
