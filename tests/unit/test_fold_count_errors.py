"""The recount's aggregation of a month's records (FirestoreFoldRepository.count_month) when
Firestore refuses it: a missing or still-building index is retried by the next fold (the month
is never skipped as refused for good, which would leave it unchecked)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from functions.fold import adapters
from functions.fold.adapters import FirestoreFoldRepository
from shared.errors import PermanentError, TransientError, is_permanent
from shared.settings import Settings

UPTO = datetime(2026, 11, 20, tzinfo=UTC)


class Refusing:
    """An aggregation query whose get() raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def count(self, alias: str) -> Refusing:
        return self

    def sum(self, name: str, alias: str) -> Refusing:
        return self

    def get(self, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (gexc.FailedPrecondition("The query requires an index."), True),
        (gexc.ServiceUnavailable("down"), True),
        (gexc.InvalidArgument("bad"), False),
    ],
)
def test_a_count_the_next_fold_can_make_is_transient(
    monkeypatch: pytest.MonkeyPatch, error: Exception, transient: bool
) -> None:
    monkeypatch.setattr(adapters.queries, "month_records", lambda *a, **k: Refusing(error))
    repo = FirestoreFoldRepository(Settings(), client=object())
    with pytest.raises(TransientError if transient else PermanentError) as caught:
        repo.count_month("c", "2026-11", UPTO)
    assert "c_2026-11" in str(caught.value)
    assert is_permanent(caught.value) is not transient
    if isinstance(error, gexc.FailedPrecondition):
        assert "firestore.indexes.json" in str(caught.value)


class RefusingScan:
    """A scan query whose stream() raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def stream(self, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (gexc.FailedPrecondition("The query requires an index."), True),
        (gexc.DeadlineExceeded("slow"), True),
        (gexc.PermissionDenied("no"), False),
    ],
)
def test_a_scan_the_next_fold_can_make_is_transient(
    monkeypatch: pytest.MonkeyPatch, error: Exception, transient: bool
) -> None:
    monkeypatch.setattr(adapters.queries, "new_records", lambda *a, **k: RefusingScan(error))
    repo = FirestoreFoldRepository(Settings(), client=object())
    with pytest.raises(TransientError if transient else PermanentError) as caught:
        next(repo.scan_records(3, None, UPTO, 10, UPTO))
    assert "fold bucket 3" in str(caught.value)
    if isinstance(error, gexc.FailedPrecondition):
        assert "(fold_bucket, recorded_at)" in str(caught.value)
