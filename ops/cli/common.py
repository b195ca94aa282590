"""What every `blueprint` command shares: one-line errors, checked values, output, the client."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, TextIO

import typer

from shared.errors import BlueprintError

if TYPE_CHECKING:
    from rich.console import Console

PROG: Final = "blueprint"
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

ClientFactory = Callable[[], Any]


class CliError(BlueprintError):
    """A failure to report as one line (exit code 1 unless `code` says otherwise)."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Run:
    """What `main` hands every command (typer's `ctx.obj`): the client factory and stdout."""

    client_factory: ClientFactory
    out: TextIO

    def console(self) -> Console:
        """A rich console on this run's stdout (no colour codes when it is not a terminal)."""
        from rich.console import Console  # noqa: PLC0415

        # markup=False: stored text (ids, reasons such as "[a-z0-9_.-]") is printed as it is.
        console = Console(file=self.out, highlight=False, soft_wrap=False, markup=False)
        if not console.is_terminal:
            # A pipe or a file has no width: never cut a table to rich's default 80 columns.
            console.width = 200
        return console

    def print(self, text: str = "") -> None:
        """One line (or block) of plain text on stdout."""
        print(text, file=self.out)

    def json(self, data: Any) -> None:
        """`data` as one JSON document on stdout (keys in a stable order, UTF-8 as is); a stored
        NaN or infinity, which JSON has no word for, as the text "nan" / "inf"."""
        text = json.dumps(_finite(data), ensure_ascii=False, default=str, allow_nan=False)
        print(text, file=self.out)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def run_of(ctx: typer.Context) -> Run:
    """The `Run` of the current invocation, once its arguments are parsed and valid.

    A bad environment variable fails here, naming the variable: after the arguments (a usage
    mistake is said first), before anything is read.
    """
    from shared.settings import get_settings  # noqa: PLC0415

    get_settings()
    run = ctx.find_root().obj
    assert isinstance(run, Run), "ops.cli.main sets ctx.obj"
    return run


PROBE_DOCUMENT: Final = "blueprint-cli-reachability-probe"
"""A customer id nobody uses: the CLI reads it once (no retries) to see that Firestore answers."""

START_EMULATORS: Final = (
    "start the emulators (`make emulators`, or the whole suite with `make run`) and export the "
    "FIRESTORE_EMULATOR_HOST it prints, or, for a real project, unset every *_EMULATOR_HOST and "
    "set GOOGLE_CLOUD_PROJECT with credentials (`gcloud auth application-default login`)"
)
"""The two ways out of an unreachable Firestore, said in one sentence."""


def firestore_client() -> Any:
    """A Firestore client for the configured project, checked to answer."""
    from google.cloud import firestore  # noqa: PLC0415 - lazy: --help stays fast

    from shared.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    client = firestore.Client(project=settings.project_id)
    check_reachable(client, settings)
    return client


def check_reachable(client: Any, settings: Any) -> None:
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
                f"({type(exc).__name__}); {START_EMULATORS}"
            ) from None
        raise CliError(
            f"Firestore (project {settings.project_id}) is not reachable "
            f"({type(exc).__name__}): {one_line(exc)}; for the local emulators instead, "
            "`make emulators` or `make run` print the FIRESTORE_EMULATOR_HOST to export"
        ) from None


def check_document_id(text: str | None) -> str | None:
    """A typer callback: a valid Firestore document id (no '/', not '__...__', not empty)."""
    if text is None:
        return None
    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415

    from shared.types import DocumentId  # noqa: PLC0415

    try:
        return str(TypeAdapter(DocumentId).validate_python(text))
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise typer.BadParameter(f"{text!r}: {reason}") from None


def check_month(text: str | None) -> str | None:
    """A typer callback: `YYYY-MM` with a month 01-12 (bad usage, exit 2, in every command)."""
    if text is None:
        return None
    from shared.times import MONTH_RE  # noqa: PLC0415

    if not MONTH_RE.match(text) or text < "0001-01":
        raise typer.BadParameter(f"{text!r}: expected YYYY-MM, for example 2025-01")
    if text == "9999-12":  # its end, the first instant of year 10000, has no timestamp
        raise typer.BadParameter(f"{text!r}: expected a month from 0001-01 to 9999-11")
    return text


def not_future(month: str, command: str, verb: str, now: datetime | None = None) -> str:
    """`month` unless it is after the current month (UTC): nothing can have happened there yet."""
    from shared.times import month_of  # noqa: PLC0415

    current = month_of(now or datetime.now(UTC))
    if month > current:
        raise CliError(
            f"{command}: --month {month}: a future month cannot be {verb} (the current month "
            f"is {current})",
            EXIT_USAGE,
        )
    return month


def unknown_customer(command: str, customer_id: str, detail: str = "", after: str = "") -> CliError:
    """The one wording (exit 1) of a customer id that names no customer, in every command:
    `COMMAND: unknown customer 'ID' (no customers/ID document[DETAIL]): check the id[AFTER]`."""
    from shared.settings import get_settings  # noqa: PLC0415

    where = f"{get_settings().customers_collection}/{customer_id}"
    return CliError(
        f"{command}: unknown customer {customer_id!r} (no {where} document{detail}): "
        f"check the id{after}"
    )


def short(value: Any, limit: int = 120) -> str:
    """`repr(value)`, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 400 characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:397] + "..."


MonthOption = Annotated[
    str,
    typer.Option(
        "--month", callback=check_month, help="calendar month, YYYY-MM (UTC)", show_default=False
    ),
]
"""The required `--month YYYY-MM` of the commands that read one month."""
