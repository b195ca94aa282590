"""`blueprint quota reset`: preview or run the monthly quota reset with the function's own code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ops.cli import progress as bars
from ops.cli.common import EXIT_USAGE, CliError, check_month, not_future, run_of

if TYPE_CHECKING:
    from functions.reset import ResetSummary

quota_app = typer.Typer(help="Monthly quotas.", no_args_is_help=False)


def register(app: typer.Typer) -> None:
    """The `quota` group."""
    app.add_typer(quota_app, name="quota")


@quota_app.callback()
def quota_group() -> None:
    """Monthly quotas."""


def check_period(period: str, now: datetime) -> str:
    """A month to reset: YYYY-MM, not after the current month."""
    check_month(period)
    return not_future(period, "quota reset", "reset", now)


@quota_app.command("reset")
def reset(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would be reset, write nothing")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="really reset (without --dry-run)")] = False,
    month: Annotated[
        str | None,
        typer.Option(
            "--month", callback=check_month, help="period YYYY-MM (default: the current month)"
        ),
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bar")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the summary as one JSON object")] = False,
) -> None:
    """Preview (--dry-run) or run (--yes) the monthly quota reset with the function's own code."""
    # Lazy: the reset module is only paid for by this command.
    from functions.reset import FirestoreResetRepository, run_reset  # noqa: PLC0415
    from shared.settings import get_settings  # noqa: PLC0415

    if not dry_run and not yes:
        raise CliError(
            "quota reset: pass --dry-run to preview, or --yes to reset for real", EXIT_USAGE
        )
    run = run_of(ctx)
    now = datetime.now(UTC)
    period = check_period(month or now.strftime("%Y-%m"), now)
    settings = get_settings()
    repo = FirestoreResetRepository(
        run.client_factory(),
        settings.customers_collection,
        settings.quota_resets_collection,
        timeout=settings.firestore_timeout_seconds,
    )
    shown = not no_progress and bars.stderr_is_terminal()
    with bars.Bar(
        "checking" if dry_run else "resetting",
        repo.count_customers() if shown else None,  # one count query, for the bar only
        "customers",
        enabled=shown,
    ) as progress:

        def on_page(summary: ResetSummary) -> None:  # the running summary, after each page
            progress.update(summary.seen - progress.n)
            progress.note(reset=summary.reset, skipped=summary.skipped, errors=summary.errors)

        summary = run_reset(repo, period, now, dry_run=dry_run, progress=on_page)
    fields = summary.log_fields()
    if as_json:
        run.json(fields)
        return
    run.print(("dry run: " if dry_run else "") + f"quota reset for {period}")
    run.print("\n".join(f"{k}: {v}" for k, v in fields.items()))
