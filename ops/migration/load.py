"""Step 1 of the migration: read the export's files into records (see `ops.migration`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from ops.migration.records import (
    CUSTOMERS,
    FEATURE_FLAGS,
    ORDER,
    SCENES,
    BadRecord,
    MigrationInputError,
    Record,
)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MigrationInputError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise MigrationInputError(f"{path}: not valid JSON: {exc}") from None


_ID_KEYS: Final = {CUSTOMERS: ("id", "customer_id"), SCENES: ("id", "scene_id")}


def _documents(
    collection: str, data: Any, source: str, bad: list[BadRecord]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, document) pairs of an id -> doc object or a list of docs with an id key."""
    if isinstance(data, dict):
        for doc_id, doc in data.items():
            if doc_id.startswith("_comment"):
                continue
            if not isinstance(doc, dict):
                bad.append(BadRecord(source, collection, doc_id, "(document)", doc, "an object"))
                continue
            yield doc_id, dict(doc)
        return
    if isinstance(data, list):
        for index, item in enumerate(data):
            keys = (*_ID_KEYS.get(collection, ("id",)), "_id")
            if not isinstance(item, dict):
                bad.append(BadRecord(source, collection, f"#{index}", "(document)", item, "object"))
                continue
            doc = dict(item)
            doc_id = next((doc[k] for k in keys if isinstance(doc.get(k), str)), None)
            if doc_id is None:
                bad.append(
                    BadRecord(
                        source, collection, f"#{index}", "id", None, f"one of {list(keys)} set"
                    )
                )
                continue
            for key in ("id", "_id"):
                doc.pop(key, None)
            if collection == SCENES:
                doc.pop("scene_id", None)
            if collection == CUSTOMERS:
                doc.pop("customer_id", None)
            yield doc_id, doc
        return
    raise MigrationInputError(f"{source}: expected an object of id -> document or a list")


def _classify(paths: Sequence[str | Path]) -> tuple[list[tuple[str, Path]], list[Path]]:
    """(collection, file) pairs and customer files named by the arguments."""
    files: list[tuple[str, Path]] = []
    customer_files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            per_collection = [path / f"{c}.json" for c in ORDER if (path / f"{c}.json").is_file()]
            if per_collection:
                files += [(p.stem, p) for p in per_collection]
                continue
            found = sorted(path.glob("*.json"))
            if not found:
                raise MigrationInputError(f"{path}: no .json files in this directory")
            customer_files += found
        elif path.is_file():
            if path.stem not in ORDER:
                raise MigrationInputError(
                    f"{path}: cannot tell the collection; name the file customers.json, "
                    "scenes.json or feature_flags.json (or give a directory of customer files)"
                )
            files.append((path.stem, path))
        else:
            raise MigrationInputError(f"{path}: no such file or directory")
    return files, customer_files


def _customer_file(path: Path, records: list[Record], bad: list[BadRecord]) -> None:
    """A `<customer_id>.json` file: the customer, with optional `scenes` and `feature_flags`."""
    doc = _read_json(path)
    if not isinstance(doc, dict):
        raise MigrationInputError(f"{path}: expected one customer document (a JSON object)")
    doc = dict(doc)
    doc_id = str(doc.pop("customer_id", None) or path.stem)
    scenes = doc.pop("scenes", None)
    flags = doc.pop("feature_flags", None)
    records.append(Record(CUSTOMERS, doc_id, doc, str(path)))
    if scenes is not None:
        for scene_id, scene in _documents(SCENES, scenes, str(path), bad):
            scene.setdefault("customer_id", doc_id)
            records.append(Record(SCENES, scene_id, scene, str(path)))
    if isinstance(flags, dict):
        records.append(Record(FEATURE_FLAGS, doc_id, dict(flags), str(path)))
    elif flags is not None:
        bad.append(BadRecord(str(path), FEATURE_FLAGS, doc_id, "(document)", flags, "an object"))


def load_export(paths: Sequence[str | Path]) -> tuple[list[Record], list[BadRecord]]:
    """Read every record of the export; structural problems come back as bad records."""
    records: list[Record] = []
    bad: list[BadRecord] = []
    files, customer_files = _classify(paths)
    for collection, path in files:
        for doc_id, doc in _documents(collection, _read_json(path), str(path), bad):
            records.append(Record(collection, doc_id, doc, str(path)))
    for path in customer_files:
        _customer_file(path, records, bad)
    return records, bad
