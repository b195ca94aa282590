"""Requests functions-framework cannot parse before a function runs: answered, never a crash.

functions-framework reads every request body as JSON while it builds the CloudEvent, whatever
the content type. A body nested ~1000 levels makes that parse raise RecursionError (wrapped in
the SDK's DataUnmarshallerError in binary mode), which functions-framework answers with a 500:
the platform would redeliver the same event until its retry window ends. `functions/main.py`
registers `answer` as the app's error handler for those errors (`functions_framework
.errorhandler`), so that:

- a CloudEvent whose body could not be parsed is handed to its function with the raw bytes as
  data: the function classifies it as any other unreadable body (the config triggers: refused,
  acknowledged, one ERROR line; a Pub/Sub function: its own rejection record);
- a request that is no CloudEvent at all (its attributes unreadable too) is answered 400, as
  functions-framework answers other requests that are no CloudEvent;
- an error raised by the function itself (its CloudEvent parses) is raised again: its 500 stands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import flask
from cloudevents.exceptions import DataUnmarshallerError
from cloudevents.http import from_http

from shared import logs

PARSE_ERRORS: Final = (DataUnmarshallerError, RecursionError, TypeError)
"""What functions-framework lets escape while it builds the CloudEvent (TypeError: a JSON body
that is no object, read as a legacy background event)."""


def _raw(data: Any) -> Any:
    return data


def answer(exc: Exception, functions: Mapping[str, Any]) -> tuple[str, int]:
    """The answer to a request whose CloudEvent functions-framework could not build (see the
    module doc); `functions` maps entry-point names (the app's name) to the functions."""
    request = flask.request
    try:
        event = from_http(request.headers, request.get_data(), data_unmarshaller=_raw)
    except Exception as again:  # whatever the SDK refuses is no CloudEvent
        reason = f"{type(again).__name__}: {str(again)[:200]}"
        logs.warning(
            f"request to {request.path} is no CloudEvent, answered 400: {reason}",
            decision="bad-request",
        )
        return f"not a CloudEvent: {reason}\n", 400
    if not isinstance(exc, DataUnmarshallerError):
        raise exc  # the function raised it: its answer stands
    function: Callable[[Any], None] = functions[flask.current_app.name]
    function(event)
    return "OK", 200
