"""`blueprint migrate`: export files -> Firestore (the work is in `ops.migration`)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from ops.cli.common import ClientFactory, CliError, short


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 500:
        raise argparse.ArgumentTypeError(
            f"expected 1 to 500 (Firestore's batch limit), got {value}"
        )
    return value


def add_parser(sub: Any) -> None:
    """The `migrate` subcommand."""
    mig = sub.add_parser("migrate", help="JSON export files -> Firestore (schema.md's guide)")
    mig.add_argument(
        "paths",
        nargs="+",
        help="customers.json / scenes.json / feature_flags.json, "
        "a directory holding them, or a directory of <customer_id>.json files",
    )
    mig.add_argument("--skip-invalid", action="store_true", help="write the valid records anyway")
    mig.add_argument("--dry-run", action="store_true", help="validate and plan, write nothing")
    mig.add_argument("--batch-size", type=_batch_size, default=400, help="writes per batch")
    mig.add_argument("--no-progress", action="store_true", help="no progress bar")
    mig.set_defaults(func=cmd_migrate)


def cmd_migrate(args: argparse.Namespace, client_factory: ClientFactory, out: TextIO) -> int:
    """Export files -> Firestore."""
    from ops.migration import FirestoreMigrationTarget, migrate  # noqa: PLC0415

    def progress(total: int) -> Any:
        from tqdm import tqdm  # noqa: PLC0415

        return tqdm(
            total=total, unit="doc", desc="writing", disable=True if args.no_progress else None
        )

    target = FirestoreMigrationTarget(client_factory)
    result = migrate(
        args.paths,
        target,
        skip_invalid=args.skip_invalid,
        dry_run=args.dry_run,
        batch_size=args.batch_size,
        progress_factory=progress,
    )
    if result.invalid:
        print(
            f"{len(result.invalid)} problems in {result.invalid_records} invalid records:",
            file=out,
        )
        print("file\tid\tfield\tvalue\texpected", file=out)
        for bad in result.invalid:
            print(
                f"{bad.source}\t{bad.collection}/{bad.doc_id}\t{bad.field}\t{short(bad.value)}\t"
                f"{bad.expected}",
                file=out,
            )
    if result.refused:
        raise CliError(
            f"migrate: {result.invalid_records} of {result.records} records are invalid; "
            "nothing written (fix them, or pass --skip-invalid to write the valid ones)"
        )
    print(("dry run: " if result.dry_run else "") + result.summary(), file=out)
    return 0
