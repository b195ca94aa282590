"""`blueprint quota reset`: preview or run the monthly quota reset with the function's own code."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from ops.cli.common import EXIT_USAGE, ClientFactory, CliError, Parser

if TYPE_CHECKING:
    from functions.reset import ResetSummary


def add_parser(sub: Any) -> None:
    """The `quota reset` subcommand."""
    quota = sub.add_parser("quota", help="monthly quotas")
    quota_sub = quota.add_subparsers(dest="quota_command", required=True, parser_class=Parser)
    reset = quota_sub.add_parser("reset", help="the monthly quota reset")
    reset.add_argument("--dry-run", action="store_true", help="show what would be reset")
    reset.add_argument("--yes", action="store_true", help="really reset (without --dry-run)")
    reset.add_argument("--month", help="period YYYY-MM (default: the current month)")
    reset.add_argument("--no-progress", action="store_true", help="no progress bar")
    reset.set_defaults(func=cmd_quota_reset)


def check_period(period: str, now: datetime) -> str:
    """A month to reset: YYYY-MM, not after the current month."""
    from shared.times import MONTH_RE, month_of  # noqa: PLC0415

    if not MONTH_RE.match(period):
        raise CliError(f"--month {period!r}: expected YYYY-MM, for example 2025-01", EXIT_USAGE)
    if period > month_of(now):
        raise CliError(
            f"--month {period}: a future month cannot be reset (the current month is "
            f"{month_of(now)})",
            EXIT_USAGE,
        )
    return period


def cmd_quota_reset(args: argparse.Namespace, client_factory: ClientFactory, out: TextIO) -> int:
    """Preview (dry run) or run the monthly quota reset with the reset function's own code."""
    # Lazy: the reset module and tqdm are only paid for by this command.
    from tqdm import tqdm  # noqa: PLC0415

    from functions.reset import FirestoreResetRepository, run_reset  # noqa: PLC0415
    from shared.settings import get_settings  # noqa: PLC0415

    if not args.dry_run and not args.yes:
        raise CliError("quota reset: pass --dry-run to preview, or --yes to reset for real", 2)
    now = datetime.now(UTC)
    period = check_period(args.month or now.strftime("%Y-%m"), now)
    settings = get_settings()
    repo = FirestoreResetRepository(
        client_factory(),
        settings.customers_collection,
        settings.quota_resets_collection,
        timeout=settings.firestore_timeout_seconds,
    )
    bar = tqdm(
        total=None if args.no_progress else repo.count_customers(),
        unit="customer",
        desc=("checking" if args.dry_run else "resetting"),
        disable=True if args.no_progress else None,
    )

    def progress(summary: ResetSummary) -> None:  # the running summary, after each page
        bar.update(summary.seen - bar.n)
        bar.set_postfix(reset=summary.reset, skipped=summary.skipped, errors=summary.errors)

    try:
        summary = run_reset(repo, period, now, dry_run=args.dry_run, progress=progress)
    finally:
        bar.close()
    print(("dry run: " if args.dry_run else "") + f"quota reset for {period}", file=out)
    print("\n".join(f"{k}: {v}" for k, v in summary.log_fields().items()), file=out)
    return 0
