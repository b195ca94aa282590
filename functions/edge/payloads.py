"""A refused message's body as its `usage_rejections` document keeps it (a usage rejection and
a usage dead letter alike), so that `blueprint usage replay` can deliver it again."""

from __future__ import annotations

import base64
import json
from typing import Any, Final

PAYLOAD_LIMIT: Final = 16_384
"""Bytes of the payload kept (the original size is stored too)."""
_OWNER_FIELDS: Final = ("customer_id", "event_id")


def _utf8(text: str) -> bool:
    """False for text Firestore cannot store: `json.loads` accepts an escaped lone surrogate
    (`"\\ud800"`), which has no UTF-8 form."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def payload_fields(raw: bytes) -> dict[str, Any]:
    """`payload` (UTF-8 text cut on a character boundary, else base64), its encoding, size and
    whether it was cut; and `customer_id` / `event_id` when the whole body is JSON that names
    them (people search by customer)."""
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    truncated = len(raw) > PAYLOAD_LIMIT
    if text is not None:
        payload = raw[:PAYLOAD_LIMIT].decode("utf-8", errors="ignore")  # whole characters only
    else:
        payload = base64.b64encode(raw[:PAYLOAD_LIMIT]).decode("ascii")
    fields: dict[str, Any] = {
        "payload": payload,
        "payload_encoding": "base64" if text is None else "utf-8",
        "payload_bytes": len(raw),
        "payload_truncated": truncated,
    }
    if text is None or truncated:
        return fields
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # "[" * 1000 is not JSON we can read either
        return fields
    if isinstance(parsed, dict):
        for key in _OWNER_FIELDS:
            value = parsed.get(key)
            if isinstance(value, str) and len(value) <= 1500 and _utf8(value):
                fields[key] = value
    return fields
