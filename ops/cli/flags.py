"""`blueprint flags rollout`: a gradual rollout of one feature (the work is in `ops.rollout`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ops.cli.common import EXIT_USAGE, CliError, run_of


def register(app: typer.Typer) -> None:
    """The `flags` group and its `rollout` command."""
    flags = typer.Typer(help="Feature flags: gradual rollouts.", no_args_is_help=False)
    flags.command("rollout", help="Roll FEATURE out to --percent % of the customers.")(
        rollout_command
    )
    app.add_typer(flags, name="flags")


def rollout_command(
    ctx: typer.Context,
    feature: Annotated[str, typer.Argument(help="the feature to roll out")],
    percent: Annotated[
        int | None, typer.Option("--percent", min=1, max=100, help="1 to 100 (not with --undo)")
    ] = None,
    tier: Annotated[str | None, typer.Option("--tier", help="only customers of this tier")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would change")] = False,
    undo: Annotated[bool, typer.Option("--undo", help="put back what the rollout changed")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the result as one JSON object")] = False,
) -> None:
    """Roll a feature out (or undo its rollout)."""
    from ops.rollout import rollout  # noqa: PLC0415
    from ops.rollout_store import RolloutError  # noqa: PLC0415

    if percent is None and not undo:
        raise CliError("flags rollout: --percent is required (or --undo)", EXIT_USAGE)
    if percent is not None and undo:
        raise CliError(f"flags rollout: --percent {percent} with --undo: give one", EXIT_USAGE)
    run = run_of(ctx)
    try:
        result = rollout(
            run.client_factory(), feature, percent, tier=tier, dry_run=dry_run, undo=undo
        )
    except RolloutError as exc:
        # A feature, tier or percent the rollout refuses is a usage mistake: nothing was written.
        raise CliError(f"flags rollout: {exc}", EXIT_USAGE) from None
    data: dict[str, Any] = {
        "feature": result.feature.value,
        "percent": result.percent,
        "tier": result.tier.value if result.tier is not None else None,
        "dry_run": result.dry_run,
        "undo": result.undo,
        "scanned": result.scanned,
        "selected": list(result.selected),
        "selected_sha256": result.selected_sha256,
        "turned_on": list(result.turned_on),
        "already_on": list(result.already_on),
        "skipped_invalid": list(result.skipped_invalid),
        "reverted": list(result.reverted),
        "left_alone": list(result.left_alone),
        "globally_off": result.globally_off,
    }
    if as_json:
        run.json(data)
        return
    head = "dry run: " if dry_run else ""
    if undo:
        run.print(
            f"{head}undo {data['feature']}: {len(result.reverted)} reverted, "
            f"{len(result.left_alone)} left alone (changed by hand)"
        )
    else:
        run.print(
            f"{head}{data['feature']} at {result.percent} %: {result.scanned} scanned, "
            f"{len(result.selected)} selected, {len(result.turned_on)} turned on, "
            f"{len(result.already_on)} already on, {len(result.skipped_invalid)} invalid"
        )
    if result.globally_off:
        run.print("note: feature_flags/_global switches this feature off; it wins")
