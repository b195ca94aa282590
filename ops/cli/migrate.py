"""`blueprint migrate`: export files -> Firestore (the work is in `ops.migration`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ops.cli.common import CliError, run_of, short
from ops.cli.progress import bar

if TYPE_CHECKING:
    from ops.migration.records import MigrationResult


def _batch_size(value: int) -> int:
    if not 1 <= value <= 500:
        raise typer.BadParameter(f"expected 1 to 500 (Firestore's batch limit), got {value}")
    return value


def register(app: typer.Typer) -> None:
    """The `migrate` command."""
    app.command("migrate", help="JSON export files -> Firestore (the migration guide).")(migrate)


def migrate(
    ctx: typer.Context,
    paths: Annotated[
        list[str],
        typer.Argument(
            help="customers.json / scenes.json / feature_flags.json, a directory holding them, "
            "or a directory of <customer_id>.json files",
            show_default=False,
        ),
    ],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="write the valid records anyway")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="validate and plan, write nothing")
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", callback=_batch_size, help="writes per batch"),
    ] = 400,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bar")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the result as one JSON object")] = False,
) -> None:
    """Export files -> Firestore."""
    from ops.migration import FirestoreMigrationTarget  # noqa: PLC0415
    from ops.migration import migrate as run_migration  # noqa: PLC0415

    run = run_of(ctx)
    target = FirestoreMigrationTarget(run.client_factory)
    result = run_migration(
        paths,
        target,
        skip_invalid=skip_invalid,
        dry_run=dry_run,
        batch_size=batch_size,
        progress_factory=lambda total: bar("writing", total, "docs", no_progress=no_progress),
    )
    if as_json:
        run.json(result_json(result))
    elif result.invalid:
        run.print(f"{len(result.invalid)} problems in {result.invalid_records} invalid records:")
        run.print("file\tid\tfield\tvalue\texpected")
        for bad in result.invalid:
            run.print(
                f"{bad.source}\t{bad.collection}/{bad.doc_id}\t{bad.field}\t{short(bad.value)}\t"
                f"{bad.expected}"
            )
    if result.refused:
        raise CliError(
            f"migrate: {result.invalid_records} of {result.records} records are invalid; "
            "nothing written (fix them, or pass --skip-invalid to write the valid ones)"
        )
    if not as_json:
        run.print(("dry run: " if result.dry_run else "") + result.summary())


def result_json(result: MigrationResult) -> dict[str, Any]:
    """`migrate --json` (docs/cli.md): counts per collection and every problem found."""
    from ops.migration.records import ORDER  # noqa: PLC0415

    return {
        "dry_run": result.dry_run,
        "refused": result.refused,
        "records": result.records,
        "invalid_records": result.invalid_records,
        "written": result.written,
        "flags_initialised": result.flags_initialised,
        "collections": {
            name: {
                "new": result.created[name],
                "changed": result.updated[name],
                "unchanged": result.unchanged[name],
            }
            for name in ORDER
        },
        "problems": [
            {
                "file": str(bad.source),
                "collection": bad.collection,
                "id": bad.doc_id,
                "field": bad.field,
                "value": short(bad.value),
                "expected": bad.expected,
            }
            for bad in result.invalid
        ],
    }
