"""`blueprint` (or `python -m shared.cli`): the operators' command line. See docs/cli.md.

    blueprint migrate EXPORT... [--skip-invalid] [--dry-run] [--batch-size N] [--no-progress]
    blueprint usage report --customer ID --month YYYY-MM [--csv] [--chart FILE.png]
    blueprint quota reset --dry-run [--month YYYY-MM]
    blueprint seed-demo [--dry-run]
    blueprint config customer ID | config scene ID [--customer ID]

A user mistake (bad argument, unreadable export, Firestore unreachable) prints one line on
stderr and exits non-zero: 2 for bad usage, 1 for everything else. Never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, NoReturn, TextIO

from shared.errors import BlueprintError

PROG = "blueprint"
EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(BlueprintError):
    """A failure to report as one line (exit code 1 unless `code` says otherwise)."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block; the subcommand without repeating "blueprint".
        where = self.prog.removeprefix(PROG).strip()
        raise CliError(f"{where + ': ' if where else ''}{message} (see --help)", EXIT_USAGE)


PROBE_DOCUMENT: Final = "blueprint-cli-reachability-probe"
"""A customer id nobody uses: the CLI reads it once (no retries) to see that Firestore answers."""


def _firestore_client() -> Any:
    from google.cloud import firestore  # noqa: PLC0415 - lazy: --help stays fast

    from shared.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    client = firestore.Client(project=settings.project_id)
    _check_reachable(client, settings)
    return client


def _check_reachable(client: Any, settings: Any) -> None:
    """Fail in seconds with one line when Firestore does not answer.

    The client's own retry policy would retry an unreachable emulator for five minutes before
    saying anything; one read without retries, within the Firestore deadline, says it at once.
    """
    from google.api_core import exceptions as gexc  # noqa: PLC0415

    ref = client.collection(settings.customers_collection).document(PROBE_DOCUMENT)
    try:
        ref.get(retry=None, timeout=settings.firestore_timeout_seconds)
    except (gexc.ServiceUnavailable, gexc.DeadlineExceeded) as exc:
        if settings.firestore_emulator_host:
            raise CliError(
                f"the Firestore emulator at {settings.firestore_emulator_host} is not reachable "
                f"({type(exc).__name__}); start it (`make emulators`) or fix "
                "FIRESTORE_EMULATOR_HOST"
            ) from None
        raise CliError(
            f"Firestore (project {settings.project_id}) is not reachable "
            f"({type(exc).__name__}): {_one_line(exc)}"
        ) from None


def _document_id(option: str) -> Callable[[str], str]:
    """An argparse type: a valid Firestore document id (no '/', not '__...__', not empty)."""

    def check(text: str) -> str:
        from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415

        from shared.types import DocumentId  # noqa: PLC0415

        try:
            return str(TypeAdapter(DocumentId).validate_python(text))
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise argparse.ArgumentTypeError(f"{option} {text!r}: {reason}") from None

    check.__name__ = "document id"
    return check


def _check_period(period: str, now: datetime) -> str:
    """A month to reset: YYYY-MM, not after the current month."""
    from shared.types import MONTH_RE, month_of  # noqa: PLC0415

    if not MONTH_RE.match(period):
        raise CliError(f"--month {period!r}: expected YYYY-MM, for example 2025-01", EXIT_USAGE)
    if period > month_of(now):
        raise CliError(
            f"--month {period}: a future month cannot be reset (the current month is "
            f"{month_of(now)})",
            EXIT_USAGE,
        )
    return period


ClientFactory = Callable[[], Any]


# ------------------------------------------------------------------------------------------
# Commands


def cmd_migrate(args: argparse.Namespace, client_factory: ClientFactory, out: TextIO) -> int:
    """Export files -> Firestore."""
    from shared.migration import FirestoreMigrationTarget, migrate  # noqa: PLC0415

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
                f"{bad.source}\t{bad.collection}/{bad.doc_id}\t{bad.field}\t{_short(bad.value)}\t"
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


def cmd_usage_report(args: argparse.Namespace, client_factory: ClientFactory, out: TextIO) -> int:
    """Usage of one customer in one month."""
    from shared import usage_report as ur  # noqa: PLC0415

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


def _reset_api() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """`run_reset` and `FirestoreResetRepository` of the monthly reset (functions/reset.py)."""
    try:
        module = importlib.import_module("functions.reset")
    except ImportError:
        raise CliError(
            "quota reset: functions.reset (the monthly reset issue) is not part of this build"
        ) from None
    run_reset = getattr(module, "run_reset", None)
    repository = getattr(module, "FirestoreResetRepository", None)
    if run_reset is None or repository is None:
        raise CliError("quota reset: functions.reset lacks run_reset or FirestoreResetRepository")
    return run_reset, repository


def cmd_quota_reset(args: argparse.Namespace, client_factory: ClientFactory, out: TextIO) -> int:
    """Preview (dry run) or run the monthly quota reset with the reset issue's own function."""
    from shared.settings import get_settings  # noqa: PLC0415

    if not args.dry_run and not args.yes:
        raise CliError("quota reset: pass --dry-run to preview, or --yes to reset for real", 2)
    now = datetime.now(UTC)
    period = _check_period(args.month or now.strftime("%Y-%m"), now)
    run_reset, repository = _reset_api()
    settings = get_settings()
    repo = repository(
        client_factory(),
        settings.customers_collection,
        settings.quota_resets_collection,
        timeout=settings.firestore_timeout_seconds,
    )
    count = getattr(repo, "count_customers", None)
    from tqdm import tqdm  # noqa: PLC0415

    bar = tqdm(
        total=count() if count is not None and not args.no_progress else None,
        unit="customer",
        desc=("checking" if args.dry_run else "resetting"),
        disable=True if args.no_progress else None,
    )

    def progress(summary: Any) -> None:  # the running summary, after each page
        bar.update(summary.seen - bar.n)
        bar.set_postfix(reset=summary.reset, skipped=summary.skipped, errors=summary.errors)

    try:
        summary = run_reset(repo, period, now, dry_run=args.dry_run, progress=progress)
    finally:
        bar.close()
    print(("dry run: " if args.dry_run else "") + f"quota reset for {period}", file=out)
    print(_describe(summary), file=out)
    return 0


def _describe(result: Any) -> str:
    if hasattr(result, "log_fields") and callable(result.log_fields):
        return "\n".join(f"{k}: {v}" for k, v in result.log_fields().items())
    if hasattr(result, "__dataclass_fields__"):
        return "\n".join(f"{k}: {getattr(result, k)}" for k in result.__dataclass_fields__)
    return str(result)


def cmd_seed_demo(args: argparse.Namespace, client_factory: ClientFactory, out: TextIO) -> int:
    """Load schema.md's example documents."""
    from shared.seed import seed_demo  # noqa: PLC0415

    result = seed_demo(client_factory(), dry_run=args.dry_run)
    print(("dry run: " if args.dry_run else "") + result, file=out)
    return 0


def cmd_config(args: argparse.Namespace, client_factory: ClientFactory, out: TextIO) -> int:
    """Show what CustomerConfigService answers for a customer or a scene."""
    from shared.config_adapters import FirestoreConfigReader  # noqa: PLC0415
    from shared.config_service import CustomerConfigService  # noqa: PLC0415

    service = CustomerConfigService(FirestoreConfigReader(client=client_factory()), live=False)
    if args.what == "customer":
        config = service.get_customer_config(args.id)
        print(f"customer {args.id}: tier {config.tier.value}" + _flags(config), file=out)
        for decision in config.features.values():
            print(f"  {decision.explain()}", file=out)
        problems = config.problems
    else:
        scene = service.get_scene_config(args.id, customer_id=args.customer)
        eff = scene.effective
        print(
            f"scene {args.id}: customer {eff.customer_id}, tier {eff.bundle_tier.value} "
            f"(from {eff.tier_source})" + _flags(scene),
            file=out,
        )
        for name in (
            "data_pack_tier",
            "episodes_per_variation",
            "max_variations",
            "min_quality_score",
            "vla_models",
            "num_language_variations",
            "audio_narration_enabled",
            "subtitle_generation_enabled",
            "sim2real_enabled",
            "contact_rich_enabled",
            "tactile_enabled",
        ):
            value = getattr(eff, name)
            value = getattr(value, "value", value)
            print(f"  {name} = {value!r} ({eff.sources.get(name, 'tier')})", file=out)
        for clamp in scene.clamped:
            print(
                f"  clamped {clamp.field}: {clamp.requested!r} -> {clamp.allowed!r} "
                f"({clamp.reason})",
                file=out,
            )
        problems = scene.problems
    for problem in problems:
        print(f"  warning: {problem}", file=out)
    return 0


def _flags(answer: Any) -> str:
    notes = []
    if not getattr(answer, "exists", True):
        notes.append("no such document: defaults")
    if answer.stale:
        notes.append("STALE: Firestore unavailable")
    return f" [{'; '.join(notes)}]" if notes else ""


# ------------------------------------------------------------------------------------------
# Parser and main


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog=PROG, description="BlueprintPipeline operators' tools.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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

    usage = sub.add_parser("usage", help="usage reports")
    usage_sub = usage.add_subparsers(dest="usage_command", required=True, parser_class=_Parser)
    rep = usage_sub.add_parser("report", help="a customer's usage in one month")
    rep.add_argument(
        "--customer", required=True, type=_document_id("--customer"), help="customer id"
    )
    rep.add_argument("--month", required=True, help="calendar month, YYYY-MM (UTC)")
    rep.add_argument("--csv", action="store_true", help="CSV on stdout instead of a table")
    rep.add_argument("--chart", metavar="FILE.png", help="also write a PNG of the daily cost")
    rep.set_defaults(func=cmd_usage_report)

    quota = sub.add_parser("quota", help="monthly quotas")
    quota_sub = quota.add_subparsers(dest="quota_command", required=True, parser_class=_Parser)
    reset = quota_sub.add_parser("reset", help="the monthly quota reset")
    reset.add_argument("--dry-run", action="store_true", help="show what would be reset")
    reset.add_argument("--yes", action="store_true", help="really reset (without --dry-run)")
    reset.add_argument("--month", help="period YYYY-MM (default: the current month)")
    reset.add_argument("--no-progress", action="store_true", help="no progress bar")
    reset.set_defaults(func=cmd_quota_reset)

    seed = sub.add_parser("seed-demo", help="load schema.md's example documents")
    seed.add_argument("--dry-run", action="store_true", help="show what would be written")
    seed.set_defaults(func=cmd_seed_demo)

    conf = sub.add_parser("config", help="what CustomerConfigService answers")
    conf.add_argument("what", choices=("customer", "scene"))
    conf.add_argument("id", type=_document_id("id"), help="customer or scene id")
    conf.add_argument(
        "--customer",
        type=_document_id("--customer"),
        help="the scene's customer, when known (one round trip)",
    )
    conf.set_defaults(func=cmd_config)
    return parser


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:397] + "..."


def main(
    argv: Sequence[str] | None = None,
    *,
    client_factory: ClientFactory | None = None,
    out: TextIO | None = None,
) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failed, 2 bad usage)."""
    out = out or sys.stdout
    err = sys.stderr
    try:
        args = build_parser().parse_args(argv)
        from shared.settings import get_settings  # noqa: PLC0415

        get_settings()  # a bad environment fails here, naming the variable
        func: Callable[[argparse.Namespace, ClientFactory, TextIO], int] = args.func
        return func(args, client_factory or _firestore_client, out)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=err)
        return exc.code
    except BlueprintError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=err)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=err)
        return 130
    except Exception as exc:
        return _external_error(exc, err)


def _external_error(exc: Exception, err: TextIO) -> int:
    from google.api_core import exceptions as gexc  # noqa: PLC0415
    from google.auth import exceptions as auth_exc  # noqa: PLC0415

    if isinstance(exc, gexc.GoogleAPICallError | gexc.RetryError):
        print(
            f"{PROG}: error: Firestore request failed ({type(exc).__name__}): {_one_line(exc)}",
            file=err,
        )
        return EXIT_FAILED
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        print(
            f"{PROG}: error: no Google credentials: set FIRESTORE_EMULATOR_HOST for the emulator, "
            "or log in with `gcloud auth application-default login`",
            file=err,
        )
        return EXIT_FAILED
    if isinstance(exc, OSError):
        print(f"{PROG}: error: {_one_line(exc)}", file=err)
        return EXIT_FAILED
    raise exc


def entry() -> NoReturn:
    """Console script entry point: logs as readable lines on stderr, results on stdout."""
    from shared import logs  # noqa: PLC0415

    logs.configure("text", level=logging.WARNING)
    for handler in logs.get_logger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    sys.exit(main())
