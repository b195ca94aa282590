"""`blueprint usage export`: a month's billing totals or records (the work is in `ops.export`)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Annotated, Final, TextIO

import typer

from ops.cli.common import EXIT_USAGE, CliError, MonthOption, not_future, run_of
from ops.cli.usage import usage_app

COMMAND: Final = "usage export"
FORMATS: Final = ("csv", "jsonl")
"""The export's serialisations."""


def check_format(text: str) -> str:
    """A typer callback: a known format (bad usage, exit 2, in the CLI's words otherwise).

    A plain string and not an Enum option: typer checks an Enum with pydantic, whose message
    ("Value error, 'xml' is not one of ...") would reach the user."""
    if text not in FORMATS:
        raise typer.BadParameter(f"{text!r}: expected {' or '.join(FORMATS)}")
    return text


def check_output(path: Path) -> None:
    """`--output` in a directory that exists (checked before anything is read: a typo in the
    directory must not cost a month's reads)."""
    if not path.parent.is_dir():
        raise CliError(
            f"{COMMAND}: --output {str(path)!r}: directory {str(path.parent)!r} does not exist"
        )


def open_output(path: Path) -> TextIO:
    """`--output` opened for writing, or one line naming the path and why it cannot be."""
    check_output(path)
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise CliError(f"{COMMAND}: --output {str(path)!r}: cannot be written ({why})") from None


def register(app: typer.Typer) -> None:
    """The `usage export` command."""
    usage_app.command("export", help="A month's totals per customer (or records) as CSV/JSONL.")(
        export
    )


def export(
    ctx: typer.Context,
    month: MonthOption,
    fmt: Annotated[
        str,
        typer.Option("--format", metavar="csv|jsonl", callback=check_format, help="csv or jsonl"),
    ] = "csv",
    records: Annotated[
        bool, typer.Option("--records", help="one row per record instead of per customer")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", metavar="FILE", help="write here, not stdout")
    ] = None,
) -> None:
    """Export a month's usage: per-customer totals (exact sums) or every record."""
    from ops import export as ex  # noqa: PLC0415

    not_future(month, COMMAND, "exported")
    run = run_of(ctx)
    if output is not None:
        check_output(output)
    client = run.client_factory()
    try:
        rows = ex.record_rows(client, month) if records else ex.customer_totals(client, month)
    except ex.ExportError as exc:
        raise CliError(f"{COMMAND}: {exc}", EXIT_USAGE) from None
    kind = ex.RecordRow if records else ex.CustomerTotals
    # stdout stays open after the export; a file is closed by it.
    target: AbstractContextManager[TextIO] = (
        open_output(output) if output is not None else nullcontext(run.out)
    )
    with target as out:
        count = ex.write_csv(rows, out, kind) if fmt == "csv" else ex.write_jsonl(rows, out)
    if output is not None:
        typer.echo(f"{COMMAND}: {count} rows written to {output}", err=True)
