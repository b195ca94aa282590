"""Pages and cursor tokens for the operators' listings (`ops.inspect`, and the CLI on top).

A listing's query orders on the document id last, so the ordered values of a page's last
document are an exact position: the next page starts after it, and no document that stays put
is repeated or skipped. The token is those values (timestamps to the nanosecond) plus a digest
of the listing's name and filters, base64url-encoded: a token handed to another listing is
refused with `CursorError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from shared.errors import BlueprintError
from shared.times import to_utc

T = TypeVar("T")

MAX_PAGE_SIZE: Final = 1000


class ListingError(BlueprintError, ValueError):
    """A listing cannot be made as asked (bad page size, cursor, month, id, time)."""


class CursorError(ListingError):
    """A cursor token that is not one this listing handed out."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: tuple[T, ...]
    next_cursor: str | None
    """Token for the next page; None when this page is the last."""


# ---- cursors -------------------------------------------------------------------------------


def _digest(listing: str, filters: Mapping[str, Any]) -> str:
    text = json.dumps([listing, {k: str(v) for k, v in filters.items()}], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # DatetimeWithNanoseconds keeps the nanoseconds another SDK may have written.
        rfc3339 = getattr(value, "rfc3339", None)
        if callable(rfc3339):
            return {"ts": rfc3339()}
        utc = to_utc(value)
        if utc is None:
            raise TypeError(f"cannot put the naive time {value!r} in a cursor")
        return {"ts": utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    if isinstance(value, str | int) and not isinstance(value, bool):
        return value
    raise TypeError(f"cannot put {value!r} in a cursor")


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"ts"} and isinstance(value["ts"], str):
        from google.api_core.datetime_helpers import DatetimeWithNanoseconds  # noqa: PLC0415

        when: datetime = DatetimeWithNanoseconds.from_rfc3339(value["ts"])  # type: ignore[no-untyped-call]
        return when
    if isinstance(value, str | int) and not isinstance(value, bool):
        return value
    raise ValueError(value)


def encode_cursor(listing: str, filters: Mapping[str, Any], values: Sequence[Any]) -> str:
    """The token of a position in a listing (its ordered values, the document id last)."""
    body = {"l": _digest(listing, filters), "v": [_encode_value(v) for v in values]}
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, listing: str, filters: Mapping[str, Any]) -> list[Any]:
    """The position a token names; CursorError if it is not a token of this listing."""
    shown = token if len(token) <= 40 else token[:37] + "..."
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        values = [_decode_value(v) for v in body["v"]]
        digest = body["l"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise CursorError(f"cursor={shown!r}: not a cursor this listing handed out") from None
    if digest != _digest(listing, filters):
        raise CursorError(
            f"cursor={shown!r}: belongs to another listing or other filters than {listing}"
        )
    # The digest is no signature: anyone can write a token, so its values are checked too.
    last = values[-1] if values else None
    if not isinstance(last, str) or not last or "/" in last:
        raise CursorError(f"cursor={shown!r}: does not end at a document id")
    return values


# ---- the pager -----------------------------------------------------------------------------


def _check_page_size(page_size: int) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise ListingError(f"page_size={page_size!r}: expected a whole number")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ListingError(f"page_size={page_size}: expected 1 to {MAX_PAGE_SIZE}")
    return page_size


def fetch_page(
    listing: str,
    filters: Mapping[str, Any],
    build: Callable[[Sequence[Any] | None, int], Any],
    position: Callable[[Any], list[Any]],
    make: Callable[[Any], T],
    *,
    page_size: int,
    cursor: str | None,
    timeout: float,
) -> Page[T]:
    """One page of `build(after, limit)`: reads one document more than the page to know
    whether another page follows (so the last page is never an empty one)."""
    size = _check_page_size(page_size)
    after = decode_cursor(cursor, listing, filters) if cursor else None
    try:
        snaps = list(build(after, size + 1).stream(timeout=timeout))
    except (ValueError, TypeError) as exc:
        if after is None:
            raise
        # The client refuses values that do not fit the listing's order (too many, wrong type).
        shown = cursor if cursor and len(cursor) <= 40 else f"{(cursor or '')[:37]}..."
        raise CursorError(f"cursor={shown!r}: does not fit {listing}: {exc}") from None
    more = len(snaps) > size
    snaps = snaps[:size]
    token = encode_cursor(listing, filters, position(snaps[-1])) if more else None
    return Page(tuple(make(s) for s in snaps), token)


def iter_all(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a listing, page after page: `iter_all(lambda c: customers(db, cursor=c))`."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


__all__ = [
    "MAX_PAGE_SIZE",
    "CursorError",
    "ListingError",
    "Page",
    "decode_cursor",
    "encode_cursor",
    "fetch_page",
    "iter_all",
]
