"""`blueprint inspect ...`: paged listings of the data (the queries are in `ops.inspect`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import typer

from ops.cli.common import EXIT_USAGE, CliError, check_document_id, check_month, run_of

PageSize = Annotated[int, typer.Option("--page-size", min=1, max=1000, help="items per page")]
Cursor = Annotated[
    str | None, typer.Option("--cursor", help="the next_cursor a previous page printed")
]
All = Annotated[bool, typer.Option("--all", help="follow the cursors to the last page")]
AsJson = Annotated[bool, typer.Option("--json", help="one JSON object: items and next_cursor")]


def register(app: typer.Typer) -> None:
    """The `inspect` group: customers, usage, rejections, dead-letters, alerts, resets."""
    group = typer.Typer(help="Look at the data, a page at a time.", no_args_is_help=True)
    group.command("customers", help="Every customer, or one (ID).")(customers_command)
    group.command("usage", help="A customer's usage records of a month.")(usage_command)
    group.command("rejections", help="Usage messages refused, newest first.")(rejections_command)
    group.command("dead-letters", help="Messages Pub/Sub gave up on.")(dead_letters_command)
    group.command("alerts", help="Quota alert markers.")(alerts_command)
    group.command("resets", help="Monthly reset audits, newest first.")(resets_command)
    app.add_typer(group, name="inspect")


def _item(item: Any) -> dict[str, Any]:
    problems = [p.as_dict() for p in getattr(item, "problems", ())]
    out: dict[str, Any] = {"id": item.id, "data": dict(item.data)}
    if problems:
        out["problems"] = problems
    return out


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    from shared.times import parse_rfc3339  # noqa: PLC0415

    value = parse_rfc3339(text)
    if value is None:
        raise CliError(
            f"inspect: --since {text!r}: expected RFC 3339, e.g. 2026-12-01T00:00:00Z", EXIT_USAGE
        )
    return value


def _show(
    ctx: typer.Context,
    what: str,
    fetch: Callable[[Any, str | None], Any],
    cursor: str | None,
    follow: bool,
    as_json: bool,
) -> None:
    from ops.paging import ListingError  # noqa: PLC0415

    run = run_of(ctx)
    client = run.client_factory()
    items: list[dict[str, Any]] = []
    try:
        while True:
            page = fetch(client, cursor)
            items.extend(_item(i) for i in page.items)
            cursor = page.next_cursor
            if not follow or cursor is None:
                break
    except ListingError as exc:
        raise CliError(f"inspect {what}: {exc}", EXIT_USAGE) from None
    if as_json:
        run.json({"items": items, "next_cursor": cursor})
        return
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"{what}: {len(items)}")
    table.add_column("id", overflow="fold")
    table.add_column("data", overflow="fold")
    for item in items:
        table.add_row(item["id"], json.dumps(item["data"], default=str, sort_keys=True))
    run.console().print(table)
    if cursor is not None:
        run.print(f"next page: --cursor {cursor}")


def customers_command(
    ctx: typer.Context,
    customer_id: Annotated[
        str | None, typer.Argument(help="one customer", callback=check_document_id)
    ] = None,
    page_size: PageSize = 50,
    cursor: Cursor = None,
    follow: All = False,
    as_json: AsJson = False,
) -> None:
    """Every customer, or one."""
    from ops import inspect  # noqa: PLC0415

    if customer_id is not None:
        run = run_of(ctx)
        found = inspect.customer(run.client_factory(), customer_id)
        if found is None:
            raise CliError(f"inspect customers: no customer {customer_id!r}")
        if as_json:
            run.json({"items": [_item(found)], "next_cursor": None})
        else:
            run.print(json.dumps(_item(found), default=str, sort_keys=True, indent=2))
        return
    _show(
        ctx,
        "customers",
        lambda db, c: inspect.customers(db, page_size=page_size, cursor=c),
        cursor,
        follow,
        as_json,
    )


def usage_command(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option("--customer", callback=check_document_id)],
    month: Annotated[str, typer.Option("--month", help="YYYY-MM", callback=check_month)],
    action: Annotated[str | None, typer.Option("--action")] = None,
    page_size: PageSize = 50,
    cursor: Cursor = None,
    follow: All = False,
    as_json: AsJson = False,
) -> None:
    """A customer's usage records of a month, oldest first."""
    from ops import inspect  # noqa: PLC0415

    _show(
        ctx,
        "usage",
        lambda db, c: inspect.usage(
            db, customer, month, action=action, page_size=page_size, cursor=c
        ),
        cursor,
        follow,
        as_json,
    )


def rejections_command(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    customer: Annotated[str | None, typer.Option("--customer")] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339")] = None,
    page_size: PageSize = 50,
    cursor: Cursor = None,
    follow: All = False,
    as_json: AsJson = False,
) -> None:
    """Usage messages refused, newest first."""
    from ops import inspect  # noqa: PLC0415

    after = _since(since)
    _show(
        ctx,
        "rejections",
        lambda db, c: inspect.rejections(
            db, kind=kind, customer_id=customer, since=after, page_size=page_size, cursor=c
        ),
        cursor,
        follow,
        as_json,
    )


def dead_letters_command(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option("--customer")] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339")] = None,
    page_size: PageSize = 50,
    cursor: Cursor = None,
    follow: All = False,
    as_json: AsJson = False,
) -> None:
    """Dead letters (rejections of kind dead_letter), newest first."""
    from ops import inspect  # noqa: PLC0415

    after = _since(since)
    _show(
        ctx,
        "dead-letters",
        lambda db, c: inspect.dead_letters(
            db, customer_id=customer, since=after, page_size=page_size, cursor=c
        ),
        cursor,
        follow,
        as_json,
    )


def alerts_command(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option("--customer")] = None,
    month: Annotated[str | None, typer.Option("--month", callback=check_month)] = None,
    page_size: PageSize = 50,
    cursor: Cursor = None,
    follow: All = False,
    as_json: AsJson = False,
) -> None:
    """Quota alert markers."""
    from ops import inspect  # noqa: PLC0415

    _show(
        ctx,
        "alerts",
        lambda db, c: inspect.alerts(
            db, customer_id=customer, month=month, page_size=page_size, cursor=c
        ),
        cursor,
        follow,
        as_json,
    )


def resets_command(
    ctx: typer.Context,
    page_size: PageSize = 50,
    cursor: Cursor = None,
    follow: All = False,
    as_json: AsJson = False,
) -> None:
    """Monthly reset audits, newest first."""
    from ops import inspect  # noqa: PLC0415

    _show(
        ctx,
        "resets",
        lambda db, c: inspect.resets(db, page_size=page_size, cursor=c),
        cursor,
        follow,
        as_json,
    )
