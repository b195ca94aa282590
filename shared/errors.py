"""One root error and narrow subclasses; each message says what was expected and what came."""

from __future__ import annotations


class BlueprintError(Exception):
    """Root of every error this suite raises on purpose."""


class ConfigurationError(BlueprintError):
    """A setting (environment variable) is missing or has a bad value; raised at start."""


class InvalidDocumentError(BlueprintError):
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


class TransientError(BlueprintError):
    """A dependency is unavailable; the event must be retried (the platform redelivers)."""


class NotImplementedYetError(BlueprintError):
    """An entry point exists in the function table but its issue has not landed yet."""


def _short_repr(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
