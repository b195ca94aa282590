"""Let firebase-tools run the machine's Google Cloud CLI emulators instead of downloading its own.

    python -m deploy.firebase_jars build/firebase-emulators

prints the two variables to export before `firebase emulators:exec` (docs/deploy.md):

- `FIRESTORE_EMULATOR_BINARY_PATH`: firebase-tools runs it with `java -jar`, and the SDK's
  Firestore jar has no `Main-Class`; this writes a tiny launcher jar whose manifest names the
  emulator's main class and puts the SDK jar on its `Class-Path`.
- `PUBSUB_EMULATOR_BINARY_PATH`: the SDK's `cloud-pubsub-emulator` script, as is.

Nothing in the tests depends on firebase-tools; this is for people who prefer its workflow.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.request import pathname2url

FIRESTORE_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
FIRESTORE_JAR = "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
PUBSUB_SCRIPT = "platform/pubsub-emulator/bin/cloud-pubsub-emulator"


def sdk_root() -> Path:
    """The Google Cloud CLI installation directory, as `gcloud info` reports it."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise SystemExit("gcloud not found: install the Google Cloud CLI with its emulators")
    out = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def _manifest_line(key: str, value: str) -> str:
    """One manifest header, wrapped at 72 bytes as the JAR specification requires."""
    raw = f"{key}: {value}"
    chunks = [raw[:72]]
    rest = raw[72:]
    while rest:
        chunks.append(" " + rest[:71])
        rest = rest[71:]
    return "\r\n".join(chunks) + "\r\n"


def write_launcher_jar(target: Path, emulator_jar: Path) -> Path:
    """Write a jar whose only content is a manifest that starts `emulator_jar`'s main class."""
    manifest = (
        _manifest_line("Manifest-Version", "1.0")
        + _manifest_line("Main-Class", FIRESTORE_MAIN_CLASS)
        + _manifest_line("Class-Path", pathname2url(str(emulator_jar.resolve())))
        + "\r\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", manifest)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.firebase_jars", description=__doc__)
    parser.add_argument("dir", type=Path, help="where to write the launcher jar")
    args = parser.parse_args(argv)
    root = sdk_root()
    firestore_jar = root / FIRESTORE_JAR
    pubsub = root / PUBSUB_SCRIPT
    for path in (firestore_jar, pubsub):
        if not path.exists():
            raise SystemExit(
                f"{path} is missing: install the Google Cloud CLI components "
                "cloud-firestore-emulator and pubsub-emulator"
            )
    launcher = write_launcher_jar(args.dir / "firestore-launcher.jar", firestore_jar)
    print(f"export FIRESTORE_EMULATOR_BINARY_PATH={shlex.quote(str(launcher.resolve()))}")
    print(f"export PUBSUB_EMULATOR_BINARY_PATH={shlex.quote(str(pubsub))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
