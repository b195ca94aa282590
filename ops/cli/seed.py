"""`blueprint seed-demo`: load the demo's example documents (the work is in `ops.seed`)."""

from __future__ import annotations

from typing import Annotated

import typer

from ops.cli.common import run_of


def register(app: typer.Typer) -> None:
    """The `seed-demo` command."""
    app.command("seed-demo", help="Load the demo's example documents (idempotent).")(seed_demo)


def seed_demo(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be written")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the result as one JSON object")] = False,
) -> None:
    """Load the demo's example documents (`ops/data/examples/`)."""
    from ops.seed import seed_demo as seed  # noqa: PLC0415

    run = run_of(ctx)
    result = seed(run.client_factory(), dry_run=dry_run)
    if as_json:
        run.json(result.as_json())
    else:
        run.print(("dry run: " if dry_run else "") + str(result))
