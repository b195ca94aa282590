"""What every `blueprint` command shares: the one-line error, the parser, the Firestore client."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Final, NoReturn

from shared.errors import BlueprintError

PROG: Final = "blueprint"
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

ClientFactory = Callable[[], Any]


class CliError(BlueprintError):
    """A failure to report as one line (exit code 1 unless `code` says otherwise)."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block; the subcommand without repeating "blueprint".
        where = self.prog.removeprefix(PROG).strip()
        raise CliError(f"{where + ': ' if where else ''}{message} (see --help)", EXIT_USAGE)


PROBE_DOCUMENT: Final = "blueprint-cli-reachability-probe"
"""A customer id nobody uses: the CLI reads it once (no retries) to see that Firestore answers."""


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
                f"({type(exc).__name__}); start it (`make emulators`) or fix "
                "FIRESTORE_EMULATOR_HOST"
            ) from None
        raise CliError(
            f"Firestore (project {settings.project_id}) is not reachable "
            f"({type(exc).__name__}): {one_line(exc)}"
        ) from None


def document_id(option: str) -> Callable[[str], str]:
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


def short(value: Any, limit: int = 120) -> str:
    """`repr(value)`, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 400 characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:397] + "..."
