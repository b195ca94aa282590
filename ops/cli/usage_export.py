"""`blueprint usage export`: a month's billing totals or records (the work is in `ops.export`)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from ops.cli.common import EXIT_USAGE, CliError, check_month, not_future, run_of
from ops.cli.usage import usage_app


class Format(StrEnum):
    """The export's serialisation."""

    CSV = "csv"
    JSONL = "jsonl"


def register(app: typer.Typer) -> None:
    """The `usage export` command."""
    usage_app.command("export", help="A month's totals per customer (or records) as CSV/JSONL.")(
        export
    )


def export(
    ctx: typer.Context,
    month: Annotated[
        str,
        typer.Option(
            "--month",
            callback=check_month,
            help="calendar month, YYYY-MM (UTC)",
            show_default=False,
        ),
    ],
    fmt: Annotated[Format, typer.Option("--format", help="csv or jsonl")] = Format.CSV,
    records: Annotated[
        bool, typer.Option("--records", help="one row per record instead of per customer")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", metavar="FILE", help="write here, not stdout")
    ] = None,
) -> None:
    """Export a month's usage: per-customer totals (exact sums) or every record."""
    from ops import export as ex  # noqa: PLC0415

    not_future(month, "usage export", "exported")
    run = run_of(ctx)
    client = run.client_factory()
    try:
        rows = ex.record_rows(client, month) if records else ex.customer_totals(client, month)
    except ex.ExportError as exc:
        raise CliError(f"usage export: {exc}", EXIT_USAGE) from None
    kind = ex.RecordRow if records else ex.CustomerTotals
    # stdout stays open after the export; a file is closed by it.
    target: AbstractContextManager[TextIO] = (
        output.open("w", encoding="utf-8", newline="")
        if output is not None
        else nullcontext(run.out)
    )
    with target as out:
        count = ex.write_csv(rows, out, kind) if fmt is Format.CSV else ex.write_jsonl(rows, out)
    if output is not None:
        typer.echo(f"usage export: {count} rows written to {output}", err=True)
