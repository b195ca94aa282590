"""`blueprint inspect ...`: paged listings of the data (the queries are in `ops.inspect`).

Each kind is declared once (`KINDS`): its name, help, filter options and listing. Every
command gets the same paging options (`PAGING`) and goes through one render path (`_show`):
`--json` prints the items as stored, otherwise the kind's table (`ops.cli.inspect_view`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from inspect import Parameter, Signature
from typing import Annotated, Any, Final

import typer

from ops.cli.common import (
    EXIT_USAGE,
    CliError,
    check_document_id,
    check_month,
    run_of,
    unknown_customer,
)


def check_since(text: str | None) -> datetime | None:
    """A typer callback: an RFC 3339 time with a zone (bad usage, exit 2, otherwise)."""
    if text is None:
        return None
    from shared.times import parse_rfc3339  # noqa: PLC0415

    value = parse_rfc3339(text)
    if value is None:
        raise typer.BadParameter(f"{text!r}: expected RFC 3339, e.g. 2026-12-01T00:00:00Z")
    return value


def _option(name: str, annotation: Any, default: Any = None) -> Parameter:
    return Parameter(name, Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


Customer = Annotated[str | None, typer.Option("--customer", callback=check_document_id)]
Month = Annotated[str | None, typer.Option("--month", help="YYYY-MM", callback=check_month)]
Since = Annotated[str | None, typer.Option("--since", help="RFC 3339", callback=check_since)]

PAGING: Final = (
    _option(
        "page_size",
        Annotated[int, typer.Option("--page-size", min=1, max=1000, help="items per page")],
        50,
    ),
    _option(
        "cursor",
        Annotated[
            str | None, typer.Option("--cursor", help="the next_cursor a previous page printed")
        ],
    ),
    _option(
        "follow",
        Annotated[bool, typer.Option("--all", help="follow the cursors to the last page")],
        False,
    ),
    _option(
        "as_json",
        Annotated[bool, typer.Option("--json", help="one JSON object: items and next_cursor")],
        False,
    ),
)
"""The options every `inspect` command takes, after its own filters."""

Fetch = Callable[..., Any]
"""`(client, *, page_size, cursor, **filters)` -> an `ops.paging.Page`."""


def _listing(name: str) -> Fetch:
    """The `ops.inspect` function `name` (imported when called: `--help` stays fast)."""

    def fetch(client: Any, **arguments: Any) -> Any:
        from ops import inspect  # noqa: PLC0415

        return getattr(inspect, name)(client, **arguments)

    return fetch


def _customers(client: Any, *, customer_id: str | None, page_size: int, cursor: str | None) -> Any:
    """Every customer, or the one named (a page of one; none is a failure, exit 1)."""
    from ops import inspect  # noqa: PLC0415
    from ops.paging import Page  # noqa: PLC0415

    if customer_id is None:
        return inspect.customers(client, page_size=page_size, cursor=cursor)
    found = inspect.customer(client, customer_id)
    if found is None:
        raise unknown_customer("inspect customers", customer_id)
    return Page((found,), None)


@dataclass(frozen=True, slots=True)
class Kind:
    """One `inspect` command."""

    name: str
    help: str
    filters: tuple[Parameter, ...]
    """The command's own options (named as `fetch` takes them), before `PAGING`."""
    fetch: Fetch


KINDS: Final = (
    Kind(
        "customers",
        "Every customer, or one (ID).",
        (
            _option(
                "customer_id",
                Annotated[
                    str | None, typer.Argument(help="one customer", callback=check_document_id)
                ],
            ),
        ),
        _customers,
    ),
    Kind(
        "usage",
        "A customer's usage records of a month, oldest first.",
        (
            _option(
                "customer_id",
                Annotated[str, typer.Option("--customer", callback=check_document_id)],
                Parameter.empty,
            ),
            _option(
                "month",
                Annotated[str, typer.Option("--month", help="YYYY-MM", callback=check_month)],
                Parameter.empty,
            ),
            _option("action", Annotated[str | None, typer.Option("--action")]),
        ),
        _listing("usage"),
    ),
    Kind(
        "rejections",
        "Usage messages refused, newest first.",
        (
            _option("kind", Annotated[str | None, typer.Option("--kind")]),
            _option("customer_id", Customer),
            _option("since", Since),
        ),
        _listing("rejections"),
    ),
    Kind(
        "dead-letters",
        "Messages Pub/Sub gave up on (rejections of kind dead_letter), newest first.",
        (_option("customer_id", Customer), _option("since", Since)),
        _listing("dead_letters"),
    ),
    Kind(
        "alerts",
        "Quota alert markers.",
        (_option("customer_id", Customer), _option("month", Month)),
        _listing("alerts"),
    ),
    Kind("resets", "Monthly reset audits, newest first.", (), _listing("resets")),
)


def register(app: typer.Typer) -> None:
    """The `inspect` group: customers, usage, rejections, dead-letters, alerts, resets."""
    group = typer.Typer(help="Look at the data, a page at a time.", no_args_is_help=True)
    for kind in KINDS:
        group.command(kind.name, help=kind.help)(command_of(kind))
    app.add_typer(group, name="inspect")


_CONTEXT: Final = Parameter("ctx", Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)


def command_of(kind: Kind) -> Callable[..., None]:
    """The typer command of `kind`: its filters, then `PAGING`, all rendered by `_show`."""

    def command(ctx: typer.Context, **options: Any) -> None:
        _show(ctx, kind, options)

    command.__signature__ = Signature([_CONTEXT, *kind.filters, *PAGING])  # type: ignore[attr-defined]
    command.__name__ = command.__qualname__ = f"{kind.name.replace('-', '_')}_command"
    command.__doc__ = kind.help
    return command


def _item(item: Any) -> dict[str, Any]:
    """An item as `--json` prints it (docs/cli.md): id, stored data, problems if any."""
    problems = [p.as_dict() for p in getattr(item, "problems", ())]
    out: dict[str, Any] = {"id": item.id, "data": dict(item.data)}
    if problems:
        out["problems"] = problems
    return out


def _show(ctx: typer.Context, kind: Kind, options: Mapping[str, Any]) -> None:
    from ops.paging import ListingError  # noqa: PLC0415

    filters = {k: v for k, v in options.items() if k not in {p.name for p in PAGING}}
    cursor: str | None = options["cursor"]
    run = run_of(ctx)
    client = run.client_factory()
    items: list[Any] = []
    try:
        while True:
            page = kind.fetch(client, page_size=options["page_size"], cursor=cursor, **filters)
            items.extend(page.items)
            cursor = page.next_cursor
            if not options["follow"] or cursor is None:
                break
    except ListingError as exc:
        raise CliError(f"inspect {kind.name}: {exc}", EXIT_USAGE) from None
    if options["as_json"]:
        run.json({"items": [_item(i) for i in items], "next_cursor": cursor})
        return
    from ops.cli.inspect_view import table  # noqa: PLC0415

    run.console().print(table(kind.name, items))
    if cursor is not None:
        run.print(f"next page: --cursor {cursor}")
