"""firebase.json points at the committed rules and indexes; the launcher jar is well formed."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from deploy import cloudbuild, firebase_jars

ROOT = Path(__file__).resolve().parents[2]


def test_firebase_json() -> None:
    config = json.loads((ROOT / "firebase.json").read_text())
    assert config["firestore"] == {
        "rules": "firestore.rules",
        "indexes": "firestore.indexes.json",
    }
    for name in config["firestore"].values():
        assert (ROOT / name).is_file()
    emulators = config["emulators"]
    assert emulators["ui"] == {"enabled": False}, "the Emulator UI is a download"
    ports = [
        emulators["firestore"]["port"],
        emulators["firestore"]["websocketPort"],
        emulators["pubsub"]["port"],
        emulators["hub"]["port"],
        emulators["logging"]["port"],
    ]
    assert len(set(ports)) == len(ports)
    assert not {8080, 8085, 4000, 4400, 4500, 9150} & set(ports), "keep off the common defaults"


def test_generated_files_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    before = cloudbuild.cloudbuild_yaml(), cloudbuild.indexes_json()
    monkeypatch.setenv("BLUEPRINT_USAGE_EVENTS_TOPIC", "someone-elses-topic")
    monkeypatch.setenv("BLUEPRINT_CUSTOMERS_COLLECTION", "renamed")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "someone-elses-project")
    assert (cloudbuild.cloudbuild_yaml(), cloudbuild.indexes_json()) == before


def test_launcher_jar_manifest(tmp_path: Path) -> None:
    emulator = tmp_path / ("x" * 90) / "cloud-firestore-emulator.jar"
    jar = firebase_jars.write_launcher_jar(tmp_path / "launcher.jar", emulator)
    with zipfile.ZipFile(jar) as archive:
        raw = archive.read("META-INF/MANIFEST.MF")
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 72 for line in lines), "manifest lines are limited to 72 bytes"
    # Continuation lines start with one space; joined, the headers are whole again.
    text = raw.decode().replace("\r\n ", "")
    headers = dict(line.split(": ", 1) for line in text.split("\r\n") if line)
    assert headers["Main-Class"] == firebase_jars.FIRESTORE_MAIN_CLASS
    assert headers["Class-Path"] == str(emulator)
