"""Rollout buckets: stable across processes and releases, uniform enough, monotonic in percent."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops.rollout import BUCKETS, bucket
from shared.models import Feature

ROOT = Path(__file__).resolve().parents[2]
IDS = [f"cust_{i:04d}" for i in range(2000)]


def test_known_buckets_never_change() -> None:
    """Pinned values: a changed algorithm would reshuffle every rollout in production."""
    assert [bucket("tactile", c) for c in ("lab_001", "c_000", "c_001", "c_002")] == [8, 40, 72, 33]
    assert bucket(Feature.SIM2REAL, "lab_001") == 5


@pytest.mark.parametrize("seed", ["0", "12345"])
def test_buckets_are_the_same_in_another_process_whatever_its_hash_seed(seed: str) -> None:
    code = (
        "import json, sys; from ops.rollout import bucket; "
        "print(json.dumps([bucket('tactile', c) for c in json.loads(sys.stdin.read())]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(IDS),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    ).stdout
    assert json.loads(out) == [bucket("tactile", c) for c in IDS]


def test_buckets_spread_over_0_to_99_and_differ_by_feature() -> None:
    tactile = [bucket("tactile", c) for c in IDS]
    assert set(tactile) == set(range(BUCKETS))
    assert 150 <= sum(b < 10 for b in tactile) <= 250  # about 10 % of 2000
    assert tactile != [bucket("sim2real", c) for c in IDS]  # rollouts are independent


def test_raising_the_percent_keeps_everyone_already_in() -> None:
    chosen = [{c for c in IDS if bucket("tactile", c) < p} for p in (5, 10, 20, 50, 100)]
    for smaller, larger in itertools.pairwise(chosen):
        assert smaller < larger
    assert chosen[-1] == set(IDS)


def test_an_unknown_feature_is_refused() -> None:
    with pytest.raises(ValueError, match="teleport"):
        bucket("teleport", "c1")
