"""What `blueprint watch` listens to: quota alerts and config invalidations as they are published,
usage rejections as they are stored. Sources and lines, no printing (`ops/cli/watch.py` prints).

- A topic is followed through a temporary pull subscription of its own (`TopicWatch`), created
  on entry and deleted on exit, Ctrl-C included. It also expires by itself a day after its last
  use, so a watch killed hard (SIGKILL, a closed laptop) leaves nothing behind for long.
- Rejections are polled (`RejectionPoll`): documents with `rejected_at` at or after the watch's
  start, through the same query `inspect rejections` uses (no index of its own). A poll needs
  no listener thread and survives an emulator restart, at the cost of up to one poll interval
  of delay.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from shared.firestore_values import plain_value

if TYPE_CHECKING:
    from types import TracebackType

    from shared.settings import Settings

KINDS: Final = ("alerts", "invalidations", "rejections")
"""What `blueprint watch` follows."""

SUBSCRIPTION_TTL_SECONDS: Final = 86_400
"""Pub/Sub's shortest expiration: a subscription nobody pulls from for a day is deleted."""

PAGE: Final = 500
"""Rejections read per poll at most (the rest follow on the next polls)."""


@dataclass(frozen=True, slots=True)
class Item:
    """One thing that arrived: a message of a topic or a rejection document."""

    kind: str
    """`alert`, `invalidation` or `rejection`."""
    id: str
    """The Pub/Sub message id, or the rejection's document id."""
    at: datetime | None
    """When it was published (a message) or stored (a rejection)."""
    data: Any
    """The message's JSON body (its text if it is not JSON), or the rejection document."""
    attributes: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The `--json` line's object."""
        return {
            "kind": self.kind,
            "id": self.id,
            "at": _time(self.at),
            "attributes": dict(self.attributes),
            "data": plain_value(self.data),
        }

    def line(self) -> str:
        """One line for a person: the time, the kind, then what matters of it."""
        data = self.data if isinstance(self.data, dict) else {}
        if not data:
            what = _cut(str(self.data))
        elif self.kind == "alert":
            what = _alert(data)
        elif self.kind == "invalidation":
            what = _invalidation(data)
        else:
            what = _rejection(data)
        return f"{_time(self.at) or '-'}  {self.kind:<12}  {what}"


def _time(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cut(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _alert(data: dict[str, Any]) -> str:
    return (
        f"{data.get('customer_id', '?')} {data.get('month', '?')}: "
        f"{data.get('threshold_percent', '?')} % of the monthly scene quota "
        f"({data.get('scenes_generated', '?')}/{data.get('monthly_scene_quota', '?')} scenes)"
    )


def _invalidation(data: dict[str, Any]) -> str:
    text = (
        f"{data.get('collection', '?')}/{data.get('document_id', '?')} {data.get('change') or ''}"
    )
    customer = data.get("customer_id")
    if customer and customer != data.get("document_id"):
        text += f" (customer {customer})"
    if data.get("valid") is False:
        fields = [str(e.get("field", e)) for e in data.get("errors") or [] if isinstance(e, dict)]
        text += " INVALID" + (f": {', '.join(fields)}" if fields else "")
    return " ".join(text.split())


def _rejection(data: dict[str, Any]) -> str:
    customer = data.get("customer_id") or "-"
    return f"{data.get('kind', '?')} customer {customer}: {_cut(str(data.get('reason', '')))}"


def message_item(kind: str, message: Any) -> Item:
    """An Item of a received Pub/Sub message (`PubsubMessage`)."""
    raw = bytes(message.data)
    try:
        data: Any = json.loads(raw)
    except ValueError:
        data = raw.decode("utf-8", errors="replace")
    at = message.publish_time if isinstance(message.publish_time, datetime) else None
    return Item(kind, str(message.message_id), at, data, dict(message.attributes))


class TopicWatch:
    """A temporary pull subscription on a topic: `with TopicWatch(...) as w: w.poll(1.0)`."""

    def __init__(  # noqa: PLR0917 - the subscription's parts
        self,
        subscriber: Any,
        project: str,
        topic: str,
        kind: str,
        timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        from shared import names  # noqa: PLC0415

        self.subscriber = subscriber
        self.kind = kind
        self.timeout = timeout
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.name = name or f"blueprint-watch-{kind}-{stamp}-{uuid.uuid4().hex[:6]}"
        self.topic_path = names.topic_path(project, topic)
        self.path = names.subscription_path(project, self.name)

    def __enter__(self) -> TopicWatch:
        self.subscriber.create_subscription(
            request={
                "name": self.path,
                "topic": self.topic_path,
                "ack_deadline_seconds": 30,
                "expiration_policy": {"ttl": {"seconds": SUBSCRIPTION_TTL_SECONDS}},
            },
            retry=None,
            timeout=self.timeout,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Delete the subscription (already gone, or Pub/Sub down: it expires by itself)."""
        with contextlib.suppress(Exception):
            self.subscriber.delete_subscription(
                request={"subscription": self.path}, retry=None, timeout=self.timeout
            )

    def poll(self, wait: float) -> list[Item]:
        """What arrived, waiting at most about `wait` seconds; acknowledged."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415

        try:
            response = self.subscriber.pull(
                request={"subscription": self.path, "max_messages": 100},
                retry=None,
                timeout=max(wait, 0.1),
            )
        except gexc.DeadlineExceeded:
            return []  # nothing arrived in time: the normal case of a quiet topic
        received = list(response.received_messages)
        if received:
            self.subscriber.acknowledge(
                request={"subscription": self.path, "ack_ids": [r.ack_id for r in received]},
                retry=None,
                timeout=self.timeout,
            )
        return [message_item(self.kind, r.message) for r in received]


class RejectionPoll:
    """`usage_rejections` stored at or after `since`, each returned once, oldest first."""

    def __init__(self, client: Any, since: datetime, settings: Settings) -> None:
        self.client = client
        self.since = since
        self.settings = settings
        self.seen: set[str] = set()
        """Ids already returned whose `rejected_at` is `since` (the next query includes it)."""

    def poll(self) -> list[Item]:
        """The rejections stored since the last poll."""
        from shared.queries import rejections_page  # noqa: PLC0415

        query = rejections_page(self.client, since=self.since, limit=PAGE, settings=self.settings)
        snaps = query.stream(timeout=self.settings.firestore_timeout_seconds)
        found = []
        for snap in snaps:
            data = snap.to_dict() or {}
            at = data.get("rejected_at")
            if isinstance(at, datetime) and snap.id not in self.seen:
                found.append(Item("rejection", snap.id, at, data))
        found.sort(key=lambda item: (item.at, item.id))
        if found:
            last = found[-1].at
            assert last is not None
            if last > self.since:
                self.since, self.seen = last, set()
            self.seen |= {item.id for item in found if item.at == last}
        return found
