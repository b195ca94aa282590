"""Generated usage messages and the outcome each must end in, for the property tests.

`body_cases(customer, now)` draws a Pub/Sub message body around a valid usage event: valid
variations (unicode ids, year 1 to now with any offset, -0.0, 10^12 counts, `details` up to 20
levels, a body of exactly the size limit), or one defect: a wrong value in one or several fields,
a missing or extra field, an extreme number or date, non-JSON, deep nesting, an oversized body,
an unknown customer, a future timestamp. Each case says what it must end as: `recorded`, or the
rejection `kind` and the fields its reason must name. The oracle is written from docs/usage.md
and the specification (docs/data-model.md), not from the code under test. The unit property tests wrap them in CloudEvents
with envelope variations; the end-to-end sample publishes them on the local suite.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from hypothesis import strategies as st

PUBLISHED: Final = "google.cloud.pubsub.topic.v1.messagePublished"
LIMIT: Final = 65_536
"""`settings.usage_max_body_bytes` (default)."""
RECORDED: Final = "recorded"
BILLABLE: Final = ("scene_generated", "episodes_generated", "upsell_applied")
_RAW: Final = "\x00raw:"
"""A string value starting with this is written into the JSON as the raw token after it."""
_RAW_RE: Final = re.compile(r'"\\u0000raw:([^"]*)"')


@dataclass(frozen=True)
class Case:
    """One generated message body and the outcome it must end in."""

    label: str
    body: bytes
    expected: str
    """`recorded`, or the rejection kind."""
    fields: tuple[str, ...] = ()
    """A rejection's errors must name each of these (a field path or its prefix)."""
    attributes: dict[str, str] = field(default_factory=dict)


def _dump(body: Any, ascii_only: bool = True) -> bytes:
    text = json.dumps(body, ensure_ascii=ascii_only)
    return _RAW_RE.sub(r"\1", text).encode()


def raw(token: str) -> str:
    """A JSON token json.dumps cannot write (1e400, a huge exponent)."""
    return _RAW + token


# --- valid parts --------------------------------------------------------------------------------

TEXT = st.characters(codec="utf-8")  # any code point but surrogates, NUL and RTL marks included
doc_ids = st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=24)
doc_ids = doc_ids.filter(lambda s: s not in {".", ".."} and not (s[:2] == s[-2:] == "__"))
actions = st.one_of(
    st.sampled_from([*BILLABLE, "qa_reviewed", "x"]),
    st.from_regex(r"\A[a-z0-9][a-z0-9_.\-]{0,63}\Z"),
)
keys = st.text(TEXT, min_size=1, max_size=16).filter(
    lambda k: not (len(k) >= 4 and k[:2] == k[-2:] == "__")
)
amounts = st.one_of(
    st.none(),
    st.floats(0, 1e12),
    st.integers(0, 10**12),
    st.sampled_from([-0.0, 0.0, 5e-324, 1e-300, 1e12, 0.1]),
)
counts = st.one_of(st.none(), st.integers(0, 10**12), st.sampled_from([0, 1, 10**12]))
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**63 - 1, -(2**63), -0.0, 1.7976931348623157e308, 5e-324]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(TEXT, max_size=20),
)
details_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(st.one_of(_scalars, st.dictionaries(keys, inner, max_size=3)), max_size=4),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=12,
)


def nested(depth: int, leaf: Any = 1) -> dict[str, Any]:
    """`details` with `depth` levels of maps (details itself is the first)."""
    value: Any = leaf
    for _ in range(depth):
        value = {"a": value}
    return dict(value)


@st.composite
def timestamps(draw: st.DrawFn, now: datetime) -> str:
    """RFC 3339 text of an instant in [0001-01-01, now + 299 s] (UTC), any offset and form."""
    edge = draw(st.sampled_from([None, None, None, "year1", "year1-offset", "soon"]))
    if edge == "year1":
        return "0001-01-01T00:00:00Z"
    if edge == "year1-offset":
        return "0001-01-01T00:00:00-23:59"
    utc = draw(
        st.datetimes(
            datetime(1, 1, 2),  # noqa: DTZ001 -- hypothesis wants naive bounds
            (now - timedelta(seconds=1)).replace(tzinfo=None),
            timezones=st.just(UTC),
        )
    )
    if edge == "soon":
        utc = now + timedelta(seconds=299)
    minutes = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    offset = timezone(timedelta(minutes=minutes))
    local = utc.astimezone(offset)
    if draw(st.booleans()):
        local = local.replace(microsecond=0)
    text = local.isoformat(sep=draw(st.sampled_from(["T", "t", " "])))
    if minutes == 0:
        text = text.replace("+00:00", draw(st.sampled_from(["Z", "z", "+00:00", "-00:00"])))
    elif draw(st.booleans()):
        text = text[:-3] + text[-2:]  # +hhmm
    return text


@st.composite
def valid_events(draw: st.DrawFn, customer: str, now: datetime) -> dict[str, Any]:
    """A valid usage event (docs/data-model.md) for `customer`."""
    body: dict[str, Any] = {
        "schema_version": 1,
        "customer_id": customer,
        "scene_id": draw(doc_ids),
        "action": draw(actions),
        "timestamp": draw(timestamps(now)),
    }
    if draw(st.booleans()):
        body["event_id"] = draw(st.text(TEXT, min_size=1, max_size=256))
    for name, values in (
        ("episodes_generated", counts),
        ("compute_minutes", amounts),
        ("storage_gb", amounts),
    ):
        if draw(st.booleans()):
            body[name] = draw(values)
    shape = draw(st.sampled_from(["none", "null", "map", "map", "deep"]))
    if shape == "null":
        body["details"] = None
    elif shape == "map":
        body["details"] = draw(st.dictionaries(keys, details_values, max_size=5))
    elif shape == "deep":
        body["details"] = nested(draw(st.integers(1, 20)), draw(_scalars))
    return body


# --- defects -----------------------------------------------------------------------------------

NOT_A_DOC_ID: list[Any] = [42, True, None, "", "a/b", ".", "..", "__x__", "x" * 1501, [], {}]
WRONG: Final[dict[str, list[Any]]] = {
    "schema_version": [2, 0, -1, "1", True, False, None, 1.5, 1.0, [], {}],
    "customer_id": NOT_A_DOC_ID,
    "scene_id": NOT_A_DOC_ID,
    "action": ["Scene Generated", "", "-x", "x" * 65, "é", 5, None, True, []],
    "timestamp": [
        1736519400,
        1736519400.5,
        "1736519400",
        "20250110",
        "2025-01-10",
        "2025-01-10T14:30:00",
        "yesterday",
        "",
        "2025-02-30T00:00:00Z",
        "2025-01-10T24:00:00Z",
        "2016-12-31T23:59:60Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:30:00+01:00",
        "9999-12-31T23:30:00-01:00",
        "10000-01-01T00:00:00Z",
        "２０２５-01-10T14:30:00Z",
        " 2025-01-10T14:30:00Z",
        "2025-01-10T14:30:00+01",
        "2025-01-10T14:30:00+24:00",
        True,
        None,
        [],
        {},
    ],
    "episodes_generated": [True, False, 1.5, 1000.0, "100", -1, 10**12 + 1, 2**63, 2**64, []],
    "compute_minutes": [True, "1.5", "NaN", "Infinity", -1e-300, -1, {}, raw("1e400"), 10**400],
    "storage_gb": [False, "2.3", float("nan"), float("inf"), -0.5, [], raw("-1e400")],
    "event_id": ["", 5, True, "x" * 257, [], {}],
    "details": [
        [],
        "x",
        5,
        True,
        {"g": [[1]]},
        {"n": 2**63},
        {"n": -(2**63) - 1},
        {"": 1},
        {"__name__": 1},
        {"m": {"__x__": 1}},
        {"k" * 1501: 1},
        {"é" * 751: 1},
        {"f": float("nan")},
        {"f": float("-inf")},
        nested(21),
        nested(150),
    ],
}
REQUIRED: Final = ("schema_version", "customer_id", "scene_id", "action", "timestamp")
SCHEMA_FIELDS: Final = frozenset(
    {*REQUIRED, "event_id", "episodes_generated", "compute_minutes", "storage_gb", "details"}
)


def _invalid_kind(fields: list[str]) -> str:
    return "unknown_schema_version" if set(fields) == {"schema_version"} else "invalid_event"


@st.composite
def body_cases(draw: st.DrawFn, customer: str, now: datetime) -> Case:  # noqa: PLR0911
    """One generated message body (see the module doc)."""
    event = draw(valid_events(customer, now))
    ascii_only = draw(st.booleans())
    shape = draw(
        st.sampled_from(
            [
                *("wrong", "valid", "valid", "valid", "valid", "wrong", "wrong", "version"),
                *("missing", "extra", "costly", "future", "unknown_customer", "size"),
                *("not_json", "not_json", "not_object"),
            ]
        )
    )
    if shape == "valid":
        return Case("valid", _dump(event, ascii_only), RECORDED)
    if shape == "wrong":
        names = draw(st.lists(st.sampled_from(sorted(WRONG)), min_size=1, max_size=3, unique=True))
        if len(names) > 1 and "details" in names:  # its Firestore checks run on a valid event
            names.remove("details")
        for name in names:
            event[name] = draw(st.sampled_from(WRONG[name]))
        label = "wrong " + ", ".join(f"{n}={event[n]!r:.40}" for n in names)
        return Case(label, _dump(event, ascii_only), _invalid_kind(names), tuple(names))
    if shape == "version":
        event["schema_version"] = draw(st.sampled_from(WRONG["schema_version"]))
        label = f"schema_version={event['schema_version']!r}"
        return Case(label, _dump(event), "unknown_schema_version", ("schema_version",))
    if shape == "missing":
        names = draw(st.lists(st.sampled_from(REQUIRED), min_size=1, max_size=2, unique=True))
        for name in names:
            del event[name]
        return Case(
            f"missing {names}", _dump(event, ascii_only), _invalid_kind(names), tuple(names)
        )
    if shape == "extra":
        key = draw(keys.filter(lambda k: k not in SCHEMA_FIELDS))
        event[key] = draw(details_values)
        return Case(f"extra {key!r}", _dump(event, ascii_only), "invalid_event", (key,))
    if shape == "costly":  # cost beyond what a month's 64-bit cents sum can add up (> 10^12 USD)
        name = draw(st.sampled_from(["compute_minutes", "storage_gb"]))
        event.update(action=draw(st.sampled_from(BILLABLE)), compute_minutes=0, storage_gb=0)
        event[name] = draw(st.one_of(st.floats(1e13, 1.7976931348623157e308), st.just(10**16)))
        return Case(f"costly {name}", _dump(event, ascii_only), "invalid_event", (name,))
    if shape == "future":
        ahead = draw(st.one_of(st.integers(3600, 10**9), st.just(None)))
        when = (
            (now + timedelta(seconds=ahead))
            if ahead
            else datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
        )
        event["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
        return Case("future", _dump(event, ascii_only), "future_timestamp", ("timestamp",))
    if shape == "unknown_customer":
        event["customer_id"] = "nobody_" + draw(doc_ids)
        return Case("unknown customer", _dump(event), "unknown_customer", ("customer_id",))
    if shape == "size":
        return draw(_sized(event))
    if shape == "not_object":
        value = draw(st.one_of(st.lists(_scalars, max_size=3), _scalars))
        return Case(f"not an object {value!r:.30}", _dump(value), "invalid_event", ("(document)",))
    return draw(_not_json(event))


@st.composite
def _sized(draw: st.DrawFn, event: dict[str, Any]) -> Case:
    """A valid body padded to the size limit, or just past it."""
    over = draw(st.booleans())
    target = LIMIT + draw(st.integers(1, 5000)) if over else LIMIT - draw(st.integers(0, 40))
    event["details"] = {"pad": ""}
    pad = target - len(_dump(event))
    if pad < 0:  # the event alone is too big for this target: make it oversized
        return Case("sized", _dump(event), "oversized" if len(_dump(event)) > LIMIT else RECORDED)
    event["details"]["pad"] = "x" * pad
    body = _dump(event)
    assert len(body) == target
    return Case(f"{len(body)} bytes", body, "oversized" if over else RECORDED, ("(body)",))


@st.composite
def _not_json(draw: st.DrawFn, event: dict[str, Any]) -> Case:
    good = _dump(event)
    kind = draw(st.sampled_from(["truncated", "utf8", "deep", "surrogate", "bytes", "empty"]))
    if kind == "truncated":
        body = good[: draw(st.integers(0, len(good) - 1))]
    elif kind == "utf8":
        cut = good.index(b'"customer_id"') + 1
        body = good[:cut] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + good[cut:]
    elif kind == "deep":
        depth = draw(st.integers(256, 30_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        inner = opener * depth + b"1" + closer * depth if draw(st.booleans()) else opener * depth
        body = inner if len(inner) <= LIMIT else inner[:LIMIT]
        if draw(st.booleans()):  # deep inside details (a valid prefix)
            body = good[:-1] + b', "x": ' + body[: LIMIT - len(good) - 8] + b"}"
    elif kind == "surrogate":
        body = good.replace(b'"schema_version"', b'"\\ud800": 1, "schema_version"', 1)
    elif kind == "bytes":
        body = draw(st.binary(min_size=1, max_size=200).filter(lambda b: not _loads(b)))
    else:
        body = b""
    return Case(f"not json ({kind})", body, "not_json", ("(document)",))


def _loads(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return False
    return True
