"""`blueprint usage report`: a customer's usage in one month (the work is in `ops.usage_report`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ops.cli.common import (
    EXIT_USAGE,
    CliError,
    MonthOption,
    check_document_id,
    not_future,
    run_of,
    unknown_customer,
)

if TYPE_CHECKING:
    from rich.console import Console

    from ops.usage_report import UsageReport

usage_app = typer.Typer(help="Usage records: reports.", no_args_is_help=False)


def register(app: typer.Typer) -> None:
    """The `usage` group (`report`; `export` and `replay` plug in here)."""
    app.add_typer(usage_app, name="usage")


@usage_app.callback()
def usage_group() -> None:
    """Usage records: reports."""


@usage_app.command("report")
def report(
    ctx: typer.Context,
    customer: Annotated[
        str,
        typer.Option(
            "--customer", callback=check_document_id, help="customer id", show_default=False
        ),
    ],
    month: MonthOption,
    csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout instead of a table")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the report as one JSON object")] = False,
    chart: Annotated[
        str | None,
        typer.Option("--chart", metavar="FILE.png", help="also write a PNG of the daily cost"),
    ] = None,
) -> None:
    """A customer's usage in one month: per action and in total, summed exactly."""
    from ops import usage_report as ur  # noqa: PLC0415

    if csv and as_json:
        raise CliError("usage report: --csv and --json exclude each other", EXIT_USAGE)
    run = run_of(ctx)
    # Every mistake fails before any network call: the month, a future month, the chart name.
    not_future(month, "usage report", "reported")
    ur.parse_month(month)
    if chart:
        try:
            ur.check_chart_path(chart)
        except ur.ReportError as exc:
            raise CliError(f"usage report: {exc}") from None
    records, doc, last_write = ur.fetch_usage(run.client_factory(), customer, month)
    if doc is None and not records:
        raise unknown_customer("usage report", customer, f" and no usage records in {month}")
    built = ur.build_report(customer, month, records, doc, last_write)
    for skipped in built.skipped:
        sys.stderr.write(f"warning: skipped usage record {skipped}\n")
    if as_json:
        run.json(ur.report_json(built))
    elif csv:
        run.out.write(ur.render_csv(built))
    else:
        render(built, run.console())
    if chart:
        try:
            ur.write_chart(built, chart)
        except ur.ReportError as exc:
            raise CliError(f"usage report: {exc}") from None
        sys.stderr.write(f"chart written: {chart}\n")  # stdout keeps the report (--json, --csv)


def render(report: UsageReport, console: Console) -> None:
    """The report as a rich table with its header and quota lines."""
    from rich import box  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from ops.usage_report import rows  # noqa: PLC0415

    header, *body = rows(report)
    table = Table(
        title=f"Usage of {report.customer_id} in {report.month} (UTC)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for index, name in enumerate(header):
        # fold, never an ellipsis: an amount cut short would be a wrong amount.
        table.add_column(name, justify="left" if index == 0 else "right", overflow="fold")
    for index, row in enumerate(body):
        table.add_row(
            *row, end_section=index == len(body) - 2, style="bold" if row[0] == "TOTAL" else None
        )
    if not report.customer_exists:
        console.print(f"note: no customers/{report.customer_id} document")
    console.print(table)
    console.print(f"quota used: {report.quota_text}")
    if report.counter_note:
        console.print(report.counter_note)
    if report.skipped:
        console.print(f"skipped {len(report.skipped)} invalid records (see stderr)")
