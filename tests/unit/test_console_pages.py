"""The console's pages on an in-memory Firestore (`tests.console_fake`): what they show when
the data is odd, a read fails or a cursor is made up."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.auth.exceptions import DefaultCredentialsError, RefreshError

from ops import usage_sums
from ops.console import reads
from ops.console.app import create_app
from ops.paging import _digest
from shared import queries
from shared.counters import record_fields
from shared.settings import load_settings
from shared.times import month_of
from tests.console_fake import FakeFirestore

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
SETTINGS = load_settings(
    {
        "GOOGLE_CLOUD_PROJECT": "demo-console",
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9",
        "BLUEPRINT_CUSTOMERS_COLLECTION": "t_customers",
        "BLUEPRINT_USAGE_TRACKING_COLLECTION": "t_usage",
    }
)


def _app(db: Any) -> Any:
    return create_app(lambda: db, settings=SETTINGS, clock=lambda: NOW).test_client()


def _customer(db: FakeFirestore, customer_id: str, tier: str = "standard") -> None:
    db.put(SETTINGS.customers_collection, customer_id, {"schema_version": 1, "bundle_tier": tier})


def _record(db: FakeFirestore, doc_id: str, customer_id: str, when: datetime, cost: str) -> None:
    data = {
        "schema_version": 1,
        "customer_id": customer_id,
        "scene_id": "s1",
        "action": "scene_generated",
        "timestamp": when,
        "billable": True,
        "estimated_cost": float(cost),
        "episodes_generated": None,
        "compute_minutes": 0.1,
        "storage_gb": None,
        **record_fields(customer_id, month_of(when), "scene_generated", Decimal(cost), 16),
    }
    db.put(SETTINGS.usage_tracking_collection, doc_id, data)


def _rejection(db: FakeFirestore, doc_id: str, when: datetime) -> None:
    db.put(
        SETTINGS.usage_rejections_collection,
        doc_id,
        {"kind": "invalid_event", "reason": "bad", "customer_id": "c1", "rejected_at": when},
    )


def _section(page: str, start: str, end: str) -> str:
    return page[page.index(start) : page.index(end)]


# ---- a customer's page ----------------------------------------------------------------------


def test_a_past_month_lists_its_own_rejections_whatever_came_after() -> None:
    db = FakeFirestore()
    _customer(db, "c1")
    _record(db, "r0", "c1", datetime(2026, 2, 10, tzinfo=UTC), "0.10")
    for i in range(3):
        _rejection(db, f"feb{i}", datetime(2026, 2, 20, tzinfo=UTC) + timedelta(minutes=i))
    for i in range(reads.CUSTOMER_REJECTIONS):  # a later month's, as many as a page lists
        _rejection(db, f"mar{i}", datetime(2026, 3, 2, tzinfo=UTC) + timedelta(minutes=i))
    page = _app(db).get("/customers/c1?month=2026-02").get_data(as_text=True)
    rejections = _section(page, "<h2>Rejections</h2>", "<h2>Features</h2>")
    assert re.findall(r'<td class="mono">(\w+)</td>', rejections) == ["feb2", "feb1", "feb0"]
    assert "rejections-cut" not in rejections
    # Its commands replay what it lists: February's, not March's too.
    span = "--since 2026-02-01T00:00:00Z --before 2026-03-01T00:00:00Z"
    commands = re.findall(r'<code class="replay(?:-dry)?">([^<]*)</code>', rejections)
    assert commands == [
        f"blueprint usage replay --kind invalid_event --customer c1 {span}",
        f"blueprint usage replay --kind invalid_event --customer c1 {span} --dry-run",
    ]


def test_a_month_with_more_rejections_than_the_page_lists_says_so() -> None:
    db = FakeFirestore()
    _customer(db, "c1")
    for i in range(reads.CUSTOMER_REJECTIONS + 1):
        _rejection(db, f"mar{i:03d}", datetime(2026, 3, 2, tzinfo=UTC) + timedelta(minutes=i))
    page = _app(db).get("/customers/c1").get_data(as_text=True)
    rejections = _section(page, "<h2>Rejections</h2>", "<h2>Features</h2>")
    assert f"Showing the newest {reads.CUSTOMER_REJECTIONS} rejections of 2026-03" in rejections
    assert 'href="/problems?since=2026-03-01"' in rejections
    assert len(re.findall(r'<td class="mono">mar', rejections)) == reads.CUSTOMER_REJECTIONS
    assert "mar000" not in rejections  # the oldest is the one left out
    # The current month's list runs until now: so does its command, with no end.
    commands = re.findall(r'<code class="replay(?:-dry)?">([^<]*)</code>', rejections)
    assert commands[0] == (
        "blueprint usage replay --kind invalid_event --customer c1 --since 2026-03-01T00:00:00Z"
    )
    assert "--before" not in rejections


def test_features_come_from_the_apps_settings() -> None:
    db = FakeFirestore()
    _customer(db, "c1", tier="enterprise")  # in t_customers, not the default collection
    page = _app(db).get("/customers/c1").get_data(as_text=True)
    assert "sim2real is on: default of tier enterprise" in page
    assert "default of tier standard" not in page


class _ConfigReadFails(FakeFirestore):
    """Every read answers but the configuration service's batched one (it asks without retry)."""

    def get_all(self, refs: Any, **kwargs: Any) -> Any:
        if kwargs.get("retry", "default") is None:
            raise gexc.ServiceUnavailable("connection reset")
        return super().get_all(refs, **kwargs)


def test_a_failed_configuration_read_is_said_and_defaults_are_not_shown() -> None:
    db = _ConfigReadFails()
    _customer(db, "c1", tier="enterprise")
    page = _app(db).get("/customers/c1").get_data(as_text=True)
    features = page[page.index("<h2>Features</h2>") :]
    assert 'id="features-unread"' in features
    assert "Feature decisions unknown" in features
    assert "default of tier" not in features
    assert '<table id="features">' not in features


def test_the_download_reads_the_apps_collections() -> None:
    db = FakeFirestore()
    _customer(db, "c1")
    _record(db, "r1", "c1", NOW - timedelta(days=1), "0.25")
    text = _app(db).get("/months/2026-03/export.csv").get_data(as_text=True)
    assert text.splitlines()[1] == "2026-03,c1,True,1,1,0,0.1,0,0.25,1,"


def test_an_id_prefix_finds_every_id_that_starts_with_it() -> None:
    db = FakeFirestore()
    for cid in ("acm", "acme", "acme-1", "acme\uff11", "acme\U0001f600", "acmf", "b"):
        _customer(db, cid)
    page = _app(db).get("/?q=acme").get_data(as_text=True)
    found = re.findall(r'<tr data-customer="(.*?)"', page)
    assert found == ["acme", "acme-1", "acme\uff11", "acme\U0001f600"]


# ---- amounts as shown --------------------------------------------------------------------------


def test_money_is_shown_exactly_and_month_amounts_to_the_hundredth() -> None:
    db = FakeFirestore()
    for cid in ("a", "b"):
        _customer(db, cid)
    db.put(
        SETTINGS.usage_counters_collection,
        "a_2026-03",
        {
            "records": 3,
            "cost_cents": 9007199254740993,
            "compute_minutes": 5e-06,
            "storage_gb": 1.2e16,
        },
    )
    db.put(
        SETTINGS.usage_counters_collection,
        "b_2026-03",
        {"records": 1, "cost_cents": 10, "compute_minutes": 0.1, "storage_gb": 0.30000000000000004},
    )
    page = _app(db).get("/months/2026-03").get_data(as_text=True)
    rows = dict(re.findall(r'<tr data-customer="(\w)">(.*?)</tr>', page, re.S))
    cells = {cid: re.findall(r'<td class="num[^"]*">(.*?)</td>', row) for cid, row in rows.items()}
    assert cells["a"][2:] == ["0", "12000000000000000", "$90071992547409.93"]
    assert cells["b"][2:] == ["0.1", "0.3", "$0.10"]
    assert "$90071992547410.03" in page  # the page's total
    home = _app(db).get("/").get_data(as_text=True)
    assert "$90071992547409.93" in home


# ---- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [DefaultCredentialsError("Your default credentials were not found."), RefreshError("expired")],
)
@pytest.mark.parametrize("url", ["/", "/customers/c1", "/months/2026-03/export.csv"])
def test_missing_or_invalid_credentials_are_the_firestore_banner(
    error: Exception, url: str
) -> None:
    db = FakeFirestore()
    db.fail = error
    answer = _app(db).get(url)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 503
    assert 'class="banner error"' in page
    assert "the credentials are missing or invalid" in page
    assert type(error).__name__ in page


def test_no_credentials_when_the_client_is_made_is_the_banner_too() -> None:
    def no_client() -> Any:
        raise DefaultCredentialsError("Your default credentials were not found.")

    app = create_app(no_client, settings=SETTINGS, clock=lambda: NOW).test_client()
    answer = app.get("/")
    assert answer.status_code == 503
    assert "the credentials are missing or invalid" in answer.get_data(as_text=True)


def _token(listing: str, filters: dict[str, Any], values: list[Any]) -> str:
    body = {"l": _digest(listing, filters), "v": values}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "url",
    [
        "/?cursor=" + _token("customers", {}, ["a/b"]),
        "/?cursor=" + _token("customers", {}, [5]),
        "/?cursor=" + _token("customers", {}, []),
        "/?q=ab&cursor=" + _token("customers", {"prefix": "ab"}, [5]),
        "/problems?cursor="
        + _token(
            "rejections",
            {"kind": "", "customer_id": "", "since": reads.default_since(NOW)},
            ["x", "y", "z"],
        ),
    ],
)
def test_a_made_up_cursor_is_a_bad_request(url: str) -> None:
    db = FakeFirestore()
    _customer(db, "c1")
    answer = _app(db).get(url)
    assert answer.status_code == 400
    assert "cursor=" in answer.get_data(as_text=True)


def test_the_first_failed_aggregation_fails_the_page_without_waiting_for_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each day of the month is a request: after the first one fails, the queued ones are
    cancelled (the page answers 503 at once) instead of each being made and failing too."""
    db = FakeFirestore()
    _customer(db, "c1")
    _record(db, "r1", "c1", NOW - timedelta(days=2), "0.10")
    made = []
    real = queries.aggregate

    def slow_failing_days(query: Any, fields: Any, **call: Any) -> Any:
        if tuple(fields) == usage_sums.DAY_SUM_FIELDS:
            made.append(1)
            if len(made) > 1:  # the first fails at once, the others slowly
                time.sleep(0.1)
            raise gexc.DeadlineExceeded("aggregation timed out")
        return real(query, fields, **call)

    monkeypatch.setattr(queries, "aggregate", slow_failing_days)
    answer = _app(db).get("/customers/c1")
    assert answer.status_code == 503
    time.sleep(0.3)  # the requests in flight when it failed end meanwhile
    # March has 15 days by NOW: those in flight were made, the queued ones never.
    assert len(made) <= usage_sums.AGGREGATION_WORKERS + 1 < 15


def test_a_customers_quota_is_the_same_number_on_every_page() -> None:
    # A customer that started the month at 45 scenes (counted before its records) showed 46 on
    # the customers page and 1 on its own page.
    db = FakeFirestore()
    db.put(
        SETTINGS.customers_collection,
        "c1",
        {
            "schema_version": 1,
            "bundle_tier": "pro",
            "monthly_scene_quota": 100,
            "scenes_generated_this_month": 46,
            "quota_period": "2026-03",
        },
    )
    _record(db, "r0", "c1", datetime(2026, 3, 10, tzinfo=UTC), "0.10")
    page = _app(db).get("/customers/c1").get_data(as_text=True)
    assert "46 of 100" in page
    assert "The month started at 45 scenes" in page
