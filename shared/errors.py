"""One root error, two outcomes (permanent / transient), google.api_core errors mapped once."""

from __future__ import annotations

from typing import Final


class BlueprintError(Exception):
    """Root of every error this suite raises on purpose."""


class ConfigurationError(BlueprintError):
    """A setting (environment variable) is missing or has a bad value; raised at start."""


class PermanentError(BlueprintError):
    """Retrying cannot help: acknowledge the event and record it where a person finds it."""


class TransientError(BlueprintError):
    """A dependency is unavailable or contended; raise so the platform redelivers the event."""


class PublishError(TransientError):
    """Pub/Sub did not accept a message in time (down, unreachable, overloaded); names the topic,
    the project and the emulator host, so the one line says where it tried."""


class InvalidDocumentError(PermanentError):
    """A document or event failed validation. `errors` lists (field path, value, expected)."""

    def __init__(self, kind: str, errors: list[FieldError]) -> None:
        self.kind = kind
        self.errors = errors
        detail = "; ".join(str(e) for e in errors)
        super().__init__(f"invalid {kind}: {detail}")


class FieldError:
    """One bad field: where it is, what it held and what was expected."""

    __slots__ = ("expected", "field", "value")

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected

    def __str__(self) -> str:
        return f"{self.field}={_short_repr(self.value)}: {self.expected}"

    def __repr__(self) -> str:
        return f"FieldError({self.field!r}, {self.value!r}, {self.expected!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldError) and (self.field, self.expected) == (
            other.field,
            other.expected,
        )

    def __hash__(self) -> int:
        return hash((self.field, self.expected))

    def as_dict(self) -> dict[str, str]:
        """JSON-friendly form for logs, messages and rejection records."""
        return {"field": self.field, "value": _short_repr(self.value), "expected": self.expected}


TRANSIENT_STATUS: Final = frozenset(
    {
        "UNAVAILABLE",
        "DEADLINE_EXCEEDED",
        "ABORTED",
        "RESOURCE_EXHAUSTED",
        "INTERNAL",
        "UNKNOWN",
        "CANCELLED",
    }
)
"""gRPC status names a retry can fix (google.api_core raises one exception class per name).
UNKNOWN ("Stream removed", a connection reset mid-call) and CANCELLED (a call cut short) say
nothing about the request: they are retried, and every write here is safe to repeat."""

_TRANSIENT_BUILTINS: Final = (TimeoutError, ConnectionError)


def status_name(exc: BaseException) -> str | None:
    """The gRPC status name of a google.api_core error (e.g. "ABORTED"), else None."""
    code = getattr(exc, "grpc_status_code", None)
    name = getattr(code, "name", None)
    return name if isinstance(name, str) else None


_LOCAL_REFUSALS: Final = (TypeError, ValueError, OverflowError)
"""What the Firestore client raises, before any request, for a value it cannot encode (text
with a lone surrogate, an empty map key, an integer beyond 64 bits)."""


def refuses_document(exc: BaseException) -> bool:
    """True when Firestore refused the document itself: its InvalidArgument, or a value its
    client cannot encode. The document's fault: a retry cannot fix it."""
    return isinstance(exc, _LOCAL_REFUSALS) or status_name(exc) == "INVALID_ARGUMENT"


def is_transient(exc: BaseException) -> bool:
    """True when a retry can fix `exc`: the one place google.api_core errors are classified."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, PermanentError):
        return False
    name = status_name(exc)
    if name is not None:
        return name in TRANSIENT_STATUS
    if type(exc).__name__ in {"RetryError", "TimeoutError"}:  # api_core.retry gave up in time
        return True
    return isinstance(exc, _TRANSIENT_BUILTINS)


def is_permanent(exc: BaseException) -> bool:
    """True when a retry cannot help: ours, or a google.api_core error of a non-retry status."""
    if isinstance(exc, PermanentError):
        return True
    name = status_name(exc)
    return name is not None and name not in TRANSIENT_STATUS


def classify(exc: BaseException, what: str) -> BlueprintError:
    """`exc` as PermanentError (a retry cannot fix it) or TransientError (anything else).

    Unexpected errors count as transient: the event is redelivered, and the dead-letter policy
    bounds how often. The message says `what` failed and why.
    """
    if isinstance(exc, TransientError | PermanentError):
        return exc
    detail = f"{what}: {type(exc).__name__}: {_cut(str(exc), 300)}"
    return PermanentError(detail) if is_permanent(exc) else TransientError(detail)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short_repr(value: object, limit: int = 200) -> str:
    return _cut(repr(value), limit)
