"""Structured log lines Cloud Logging understands (`severity`, `message`, plus context).

One JSON object per line on stdout in production (`BLUEPRINT_LOG_FORMAT=json`, the default);
a readable single line locally (`text`). Use `log_event(...)` or a named helper, never print.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final

LOGGER_NAME: Final = "blueprint"
_logger = logging.getLogger(LOGGER_NAME)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        line = f"{record.levelname:<7} {record.getMessage()}" + (f"  {extra}" if extra else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(fmt: str | None = None, level: int | str | None = None) -> None:
    """Install the handler once (idempotent); `fmt` and `level` default to the settings'
    (`BLUEPRINT_LOG_FORMAT`, `BLUEPRINT_LOG_LEVEL`)."""
    if fmt is None or level is None:
        from shared.settings import get_settings  # noqa: PLC0415 - settings read on first use

        settings = get_settings()
        fmt = settings.log_format if fmt is None else fmt
        level = settings.log_level if level is None else level
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    handler.setLevel(level)
    _logger.handlers[:] = [handler]
    _logger.setLevel(level)
    _logger.propagate = False


def add_observer(observer: logging.Handler) -> None:
    """Let `observer` see every line, DEBUG included, while stdout keeps its level (the local
    suite's live log reads decisions this way)."""
    logger = get_logger()
    logger.setLevel(logging.DEBUG)
    logger.addHandler(observer)


def get_logger() -> logging.Logger:
    """The suite's logger, configured on first use."""
    if not _logger.handlers:
        configure()
    return _logger


def log_event(severity: int, message: str, **fields: Any) -> None:
    """Log one structured line; `fields` become top-level JSON keys (None values are dropped)."""
    logger = get_logger()
    if not logger.isEnabledFor(severity):
        return  # nothing to build: a DEBUG line per event costs nothing at INFO
    clean = {k: v for k, v in fields.items() if v is not None}
    logger.log(severity, message, extra={"fields": clean})


def debug(message: str, **fields: Any) -> None:
    """DEBUG line: not written at the default level (`BLUEPRINT_LOG_LEVEL`, INFO); observers
    added with `add_observer` still see it."""
    log_event(logging.DEBUG, message, **fields)


def info(message: str, **fields: Any) -> None:
    """INFO line."""
    log_event(logging.INFO, message, **fields)


def warning(message: str, **fields: Any) -> None:
    """WARNING line."""
    log_event(logging.WARNING, message, **fields)


def error(message: str, **fields: Any) -> None:
    """ERROR line."""
    log_event(logging.ERROR, message, **fields)


MAX_LOGGED_ERRORS: Final = 20
"""Field errors one log line names; the rest are counted (a 120,000-error document must not
make a 24 MB line)."""
MAX_ERROR_TEXT: Final = 300
"""Characters of one logged field error."""


def invalid_document(collection: str, document: str, errors: list[Any], **fields: Any) -> None:
    """ERROR naming the bad fields and values of a document that is not rewritten (the first
    MAX_LOGGED_ERRORS of them, each cut, with the count of the rest)."""
    shown = errors[:MAX_LOGGED_ERRORS]
    omitted = len(errors) - len(shown)
    detail = "; ".join(_cut(str(e)) for e in shown)
    more = f" (and {omitted} more)" if omitted else ""
    error(
        f"invalid document {collection}/{document}: {detail}{more}",
        collection=collection,
        document=document,
        errors=[
            {k: _cut(str(v)) for k, v in e.as_dict().items()}
            if hasattr(e, "as_dict")
            else _cut(str(e))
            for e in shown
        ],
        errors_omitted=omitted or None,
        **fields,
    )


def _cut(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
