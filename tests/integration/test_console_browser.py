"""The console in headless Chromium, on the local suite with usage published through Pub/Sub:
its numbers against `blueprint usage export`, and a click-through from the customers to a
customer to the problems, with a screenshot of each page."""

from __future__ import annotations

import json
import shlex
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from functions.deadletter.adapters import FirestoreDeadLetterStore
from functions.deadletter.ports import Source
from functions.deadletter.service import DeadLetterService, dead_letter_of, doc_id_of
from functions.edge.pubsub import Message
from ops.console.models import AMOUNT_PLACES
from shared.publisher import publish_usage_event
from shared.times import month_bounds, month_of
from tests.console_support import blueprint, browser, served

pytestmark = pytest.mark.slow


def _publish(suite: Any, customer_id: str, n: int, action: str, when: datetime) -> None:
    publish_usage_event(
        customer_id=customer_id,
        scene_id=f"scene_{n % 2}",
        action=action,
        timestamp=when,
        event_id=f"{customer_id}-{n}",
        episodes_generated=3 if action == "episodes_generated" else None,
        compute_minutes=1.1 * (n + 1),
        storage_gb=0.1 * (n + 1),
        client=suite.pubsub.publisher,
        settings=suite.settings,
    )


def _count(suite: Any, collection: str, field: str, value: str) -> int:
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = suite.firestore.collection(collection).where(filter=FieldFilter(field, "==", value))
    return len(list(query.stream(timeout=10)))


def _store_dead_letter(suite: Any, customer_id: str, when: datetime) -> str:
    """A usage message Pub/Sub gave up on, stored as the dead-letter function stores it (kind
    `dead_letter` in `usage_rejections`); returns its document id."""
    event = {
        "schema_version": 1,
        "event_id": f"{customer_id}-dead",
        "customer_id": customer_id,
        "scene_id": "scene_0",
        "action": "scene_generated",
        "timestamp": when.isoformat(),
    }
    published = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    attributes = {
        "CloudPubSubDeadLetterSourceSubscription": "on-usage-event-push",
        "CloudPubSubDeadLetterSourceSubscriptionProject": suite.settings.project_id,
        "CloudPubSubDeadLetterSourceDeliveryCount": "10",
        "CloudPubSubDeadLetterSourceTopicPublishTime": published,
    }
    message = Message(
        f"dl-{uuid.uuid4().hex[:8]}", json.dumps(event).encode(), attributes, published
    )
    letter = dead_letter_of(message, Source.USAGE)
    store = FirestoreDeadLetterStore(suite.settings, suite.firestore)
    DeadLetterService(store).handle(letter, datetime.now(UTC))
    return doc_id_of(letter)


def _navigate(driver: Any, action: Any) -> None:
    """Do what loads another page, then wait until the new page has replaced the old one (an
    element found before that belongs to the old page and goes stale)."""
    old = driver.find_element(By.TAG_NAME, "html")
    action()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(old))
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def _wait(what: str, done: Any, timeout: float = 90.0, tick: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}")
        if tick is not None:
            tick()
        time.sleep(1.0)


@pytest.fixture(scope="module")
def seeded_suite(local_suite: Any) -> dict[str, Any]:
    """Three customers of a fresh prefix, usage and rejections through the real functions,
    folded into their month summaries."""
    suite = local_suite
    prefix = f"con{uuid.uuid4().hex[:6]}_"
    now = datetime.now(UTC)
    month = month_of(now)
    # Inside this month and not in the future, even on its first minutes.
    when = max(month_bounds(month)[0], now - timedelta(minutes=5))
    customers = suite.firestore.collection(suite.settings.customers_collection)
    ended = datetime(2025, 1, 1, tzinfo=UTC)
    heavy, light, idle = f"{prefix}heavy", f"{prefix}light", f"{prefix}idle"
    customers.document(heavy).set(
        {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 4}
    )
    customers.document(light).set(
        {"schema_version": 1, "bundle_tier": "standard", "monthly_scene_quota": 100,
         "contract_end": ended}
    )  # fmt: skip
    customers.document(idle).set({"schema_version": 1, "bundle_tier": "enterprise"})
    for n in range(4):
        _publish(suite, heavy, n, "scene_generated", when)
    for n in range(4, 6):
        _publish(suite, heavy, n, "episodes_generated", when)
    for n in range(2):
        _publish(suite, light, n, "scene_generated", when)
    ghost = f"{prefix}ghost"
    _publish(suite, ghost, 0, "scene_generated", when)  # no such customer: rejected
    usage = suite.settings.usage_tracking_collection
    _wait(
        "the usage records",
        lambda: (_count(suite, usage, "customer_id", heavy), _count(suite, usage, "customer_id", light))
        == (6, 2),
    )  # fmt: skip
    rejections = suite.settings.usage_rejections_collection
    _wait("the rejection", lambda: _count(suite, rejections, "customer_id", ghost) == 1)
    dead = f"{prefix}dead"  # a message of this customer no delivery could handle
    dead_letter = _store_dead_letter(suite, dead, when)
    summaries = suite.firestore.collection(suite.settings.usage_counters_collection)

    def folded() -> bool:
        docs = [summaries.document(f"{c}_{month}").get(timeout=10) for c in (heavy, light)]
        return [d.to_dict().get("records") if d.exists else None for d in docs] == [6, 2]

    _wait("the fold's summaries", folded, tick=suite.fire_fold)
    return {"suite": suite, "prefix": prefix, "month": month, "heavy": heavy, "light": light,
            "idle": idle, "ghost": ghost, "dead": dead, "dead_letter": dead_letter}  # fmt: skip


@pytest.fixture(scope="module")
def console_url(seeded_suite: dict[str, Any]) -> Iterator[str]:
    suite = seeded_suite["suite"]
    with served(suite.firestore, suite.settings) as url:
        yield url


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chrome = browser(tmp_path_factory.mktemp("chromium-profile"))
    yield chrome
    chrome.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the click-through's screenshots go: pytest's temporary directory for the run."""
    return tmp_path_factory.mktemp("console-screenshots")


@pytest.fixture(scope="module")
def exported(seeded_suite: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`blueprint usage export --month M --format jsonl`, by customer id."""
    suite, month = seeded_suite["suite"], seeded_suite["month"]
    text = blueprint(["usage", "export", "--month", month, "--format", "jsonl"], suite.firestore)
    rows = [json.loads(line) for line in text.splitlines()]
    return {r["customer_id"]: r for r in rows}


def _shot(driver: Any, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _money(text: str) -> Decimal:
    return Decimal(text.strip().removeprefix("$"))


def _shown(exact: str) -> Decimal:
    """An exact amount of the export as a customer page shows it: to the hundredth (the page's
    amounts are Firestore's float sums, which may differ from the exact sums in their last
    digits)."""
    return Decimal(exact).quantize(AMOUNT_PLACES, rounding=ROUND_HALF_UP)


def test_click_through_customers_customer_problems(
    seeded_suite: dict[str, Any],
    console_url: str,
    driver: Any,
    shots: Path,
    exported: dict[str, dict[str, Any]],
) -> None:
    s = seeded_suite
    heavy, light, idle = s["heavy"], s["light"], s["idle"]
    driver.get(f"{console_url}/")
    search = driver.find_element(By.ID, "q")
    search.send_keys(s["prefix"])
    _navigate(driver, search.submit)
    rows = {
        r.get_attribute("data-customer"): r
        for r in driver.find_elements(By.CSS_SELECTOR, "#customers tbody tr")
    }
    assert sorted(rows) == sorted([heavy, light, idle])
    _shot(driver, shots, "1-customers")
    # The month's cost and scenes: the export's numbers; the quota bar at 4 of 4 is over.
    heavy_row = rows[heavy]
    assert _money(heavy_row.find_element(By.CSS_SELECTOR, "td.cost").text) == Decimal(
        exported[heavy]["cost_usd"]
    )
    bar = heavy_row.find_element(By.CSS_SELECTOR, ".quota")
    assert bar.get_attribute("data-level") == "over"
    assert (
        Decimal(bar.get_attribute("data-percent"))
        == Decimal(exported[heavy]["scenes_used"] * 100) / exported[heavy]["monthly_scene_quota"]
    )
    assert rows[light].find_element(By.CSS_SELECTOR, "td.status").text == "ended"
    assert rows[idle].find_element(By.CSS_SELECTOR, "td.cost").text == "—"
    # Sorted by cost, most first: heavy, light, then idle (nothing counted) last.
    for _ in range(2):  # the second click sorts most first
        _navigate(driver, driver.find_element(By.CSS_SELECTOR, "a.sort[data-key=cost]").click)
    order = [
        r.get_attribute("data-customer")
        for r in driver.find_elements(By.CSS_SELECTOR, "#customers tbody tr")
    ]
    assert order == [heavy, light, idle]

    _navigate(driver, driver.find_element(By.LINK_TEXT, heavy).click)
    assert driver.find_element(By.ID, "customer-id").text == heavy
    total = driver.find_element(By.ID, "total")
    want = exported[heavy]
    assert int(total.get_attribute("data-records")) == want["records"] == 6
    assert Decimal(total.get_attribute("data-cost")) == Decimal(want["cost_usd"])
    assert int(total.get_attribute("data-episodes")) == want["episodes"]
    assert Decimal(total.get_attribute("data-compute")) == _shown(want["compute_minutes"])
    assert Decimal(total.get_attribute("data-storage")) == _shown(want["storage_gb"])
    # The chart's bars add up to the same total, per action too.
    bars = driver.find_elements(By.CSS_SELECTOR, "#cost-chart rect.bar")
    assert sum(Decimal(b.get_attribute("data-value")) for b in bars) == Decimal(want["cost_usd"])
    counted = driver.find_elements(By.CSS_SELECTOR, "#records-chart rect.bar")
    by_action = {
        b.get_attribute("data-action"): int(b.get_attribute("data-value")) for b in counted
    }
    assert by_action == {"episodes_generated": 2, "scene_generated": 4}
    assert len(driver.find_elements(By.CSS_SELECTOR, "#records tbody tr")) == 6
    features = driver.find_elements(By.CSS_SELECTOR, "#features tbody tr")
    assert features
    assert all(f.find_elements(By.TAG_NAME, "td")[2].text for f in features)
    assert "No rejections in" in driver.page_source
    _shot(driver, shots, "2-customer")

    _navigate(driver, driver.find_element(By.ID, "to-problems").click)
    group = driver.find_element(By.CSS_SELECTOR, "section.group[data-kind=unknown_customer]")
    assert s["ghost"] in group.text
    # The dead letters come first, with the command that replays them since the month began.
    groups = driver.find_elements(By.CSS_SELECTOR, "section.group")
    assert groups[0].get_attribute("data-kind") == "dead_letter"
    assert s["dead"] in groups[0].text
    since = month_bounds(s["month"])[0].strftime("%Y-%m-%dT%H:%M:%SZ")
    replay = groups[0].find_element(By.CSS_SELECTOR, "code.replay").text
    assert replay == f"blueprint usage replay --kind dead_letter --since {since}"
    dry = groups[0].find_element(By.CSS_SELECTOR, "code.replay-dry").text
    assert dry == f"{replay} --dry-run"
    _shot(driver, shots, "3-problems")
    # Run dry, the dead letters' command would deliver ours again.
    answer = json.loads(blueprint([*shlex.split(dry)[1:], "--json"], s["suite"].firestore))
    assert s["dead_letter"] in {i["id"] for i in answer["items"]}
    # The group's command, run dry, would replay the ghost's rejection.
    command = group.find_element(By.CSS_SELECTOR, "code.replay-dry").text
    argv = shlex.split(command)
    assert argv[:3] == ["blueprint", "usage", "replay"]
    answer = json.loads(blueprint([*argv[1:], "--json"], s["suite"].firestore))
    assert s["ghost"] in {i["customer_id"] for i in answer["items"]}


def test_month_page_and_downloads_are_the_export(
    seeded_suite: dict[str, Any],
    console_url: str,
    driver: Any,
    shots: Path,
    exported: dict[str, dict[str, Any]],
) -> None:
    s = seeded_suite
    month = s["month"]
    driver.get(f"{console_url}/months/{month}")
    assert driver.find_element(By.ID, "month-id").text == month
    _shot(driver, shots, "4-month")
    # The downloads are the CLI's export, byte for byte (the rows are those of this moment).
    cli = blueprint(
        ["usage", "export", "--month", month, "--format", "jsonl"], s["suite"].firestore
    )
    link = driver.find_element(By.ID, "jsonl").get_attribute("href")
    with urllib.request.urlopen(link, timeout=60) as answer:  # noqa: S310 - our local server
        assert answer.read().decode() == cli
    cli_csv = blueprint(["usage", "export", "--month", month], s["suite"].firestore)
    link = driver.find_element(By.ID, "csv").get_attribute("href")
    with urllib.request.urlopen(link, timeout=60) as answer:  # noqa: S310 - our local server
        assert answer.read().decode() == cli_csv
    # Our customers' month rows: the fold's summaries, equal to the export's exact totals.
    driver.get(f"{console_url}/months/{month}?q={s['prefix']}")
    rows = {
        r.get_attribute("data-customer"): r
        for r in driver.find_elements(By.CSS_SELECTOR, "#month tbody tr")
    }
    assert sorted(rows) == sorted([s["heavy"], s["light"], s["idle"]])
    for cid in (s["heavy"], s["light"]):
        cost = rows[cid].find_element(By.CSS_SELECTOR, "td.cost").text
        assert _money(cost) == Decimal(exported[cid]["cost_usd"])
    assert rows[s["idle"]].find_element(By.CSS_SELECTOR, "td.cost").text == "—"


def test_unknown_customer_is_a_404_page(console_url: str, driver: Any, shots: Path) -> None:
    driver.get(f"{console_url}/customers/nobody_{uuid.uuid4().hex[:6]}")
    banner = driver.find_element(By.ID, "banner")
    assert "No customer" in banner.text
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(f"{console_url}/customers/nobody_x", timeout=30)  # noqa: S310
    assert failed.value.code == 404
    _shot(driver, shots, "5-unknown-customer")
