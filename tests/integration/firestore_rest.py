"""A tiny Firestore REST client for rules tests: unsigned user tokens, JSON values, no SDK.

The Python client always authenticates as `owner` and bypasses security rules; requests carrying
a user token (an unsigned JWT: `alg: none`) are checked against the loaded rules.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def user_token(uid: str, project: str, **claims: Any) -> str:
    """An unsigned Firebase ID token for `uid` with extra custom claims (e.g. admin=True)."""
    now = int(dt.datetime.now(dt.UTC).timestamp())
    payload = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "sub": uid,
        "user_id": uid,
        "firebase": {"sign_in_provider": "custom", "identities": {}},
        **claims,
    }

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def to_value(value: Any) -> dict[str, Any]:  # noqa: PLR0911
    """A Python value as a Firestore REST `Value`."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, dt.datetime):
        return {"timestampValue": value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")}
    if isinstance(value, dict):
        return {"mapValue": {"fields": {k: to_value(v) for k, v in value.items()}}}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [to_value(v) for v in value]}}
    raise TypeError(f"no Firestore value for {value!r}")


class RestClient:
    """Document calls against one emulator project, as one principal (or anonymous)."""

    def __init__(self, host: str, project: str, token: str | None) -> None:
        self.base = f"http://{host}/v1/projects/{project}/databases/(default)/documents"
        self.token = token

    def _call(
        self, method: str, path: str, query: list[tuple[str, str]], body: Any | None
    ) -> tuple[int, bytes]:
        url = f"{self.base}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Content-Type": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def get(self, path: str) -> tuple[int, bytes]:
        return self._call("GET", f"/{path}", [], None)

    def list(self, collection: str) -> tuple[int, bytes]:
        return self._call("GET", f"/{collection}", [], None)

    def query(self, collection: str, where: tuple[str, Any] | None) -> tuple[int, bytes]:
        structured: dict[str, Any] = {"from": [{"collectionId": collection}]}
        if where is not None:
            field, value = where
            structured["where"] = {
                "fieldFilter": {
                    "field": {"fieldPath": field},
                    "op": "EQUAL",
                    "value": to_value(value),
                }
            }
        return self._call("POST", ":runQuery", [], {"structuredQuery": structured})

    def create(self, path: str, data: dict[str, Any]) -> tuple[int, bytes]:
        body = {"fields": {k: to_value(v) for k, v in data.items()}}
        return self._call("PATCH", f"/{path}", [("currentDocument.exists", "false")], body)

    def update(self, path: str, data: dict[str, Any], remove: tuple[str, ...]) -> tuple[int, bytes]:
        """Set `data` and remove `remove` (fields in the mask but absent from the body)."""
        query = [("updateMask.fieldPaths", f) for f in [*data, *remove]]
        query.append(("currentDocument.exists", "true"))
        nested: dict[str, Any] = {}
        for key, value in data.items():
            # A dotted key is a nested field path (`a.b` sets key b of map a, nothing else).
            *parents, leaf = key.split(".")
            target = nested
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
        body = {"fields": {k: to_value(v) for k, v in nested.items()}}
        return self._call("PATCH", f"/{path}", query, body)

    def delete(self, path: str) -> tuple[int, bytes]:
        return self._call("DELETE", f"/{path}", [("currentDocument.exists", "true")], None)
