"""`blueprint usage report`: a customer's usage in one month (the work is in `ops.usage_report`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from ops.cli.common import ClientFactory, CliError, Parser, document_id


def add_parser(sub: Any) -> None:
    """The `usage report` subcommand."""
    usage = sub.add_parser("usage", help="usage reports")
    usage_sub = usage.add_subparsers(dest="usage_command", required=True, parser_class=Parser)
    rep = usage_sub.add_parser("report", help="a customer's usage in one month")
    rep.add_argument(
        "--customer", required=True, type=document_id("--customer"), help="customer id"
    )
    rep.add_argument("--month", required=True, help="calendar month, YYYY-MM (UTC)")
    rep.add_argument("--csv", action="store_true", help="CSV on stdout instead of a table")
    rep.add_argument("--chart", metavar="FILE.png", help="also write a PNG of the daily cost")
    rep.set_defaults(func=cmd_usage_report)


def cmd_usage_report(args: argparse.Namespace, client_factory: ClientFactory, out: TextIO) -> int:
    """Usage of one customer in one month."""
    from ops import usage_report as ur  # noqa: PLC0415

    ur.parse_month(args.month)  # a bad month or chart name fails before any network call
    if args.chart:
        ur.check_chart_path(args.chart)
    records, customer = ur.fetch_usage(client_factory(), args.customer, args.month)
    if customer is None and not records:
        raise CliError(
            f"usage report: no customer {args.customer!r} and no usage records of it in "
            f"{args.month} (check the id)"
        )
    report = ur.build_report(args.customer, args.month, records, customer)
    for skipped in report.skipped:
        sys.stderr.write(f"warning: skipped usage record {skipped}\n")
    print(ur.render_csv(report) if args.csv else ur.render_table(report), file=out, end="")
    if not args.csv:
        print(file=out)
    if args.chart:
        ur.write_chart(report, args.chart)
    return 0
