"""The monthly quota reset: schedule message -> each customer reset once per period, resumable."""

# The names other code imports (the operators' CLI, tests, benchmarks) are re-exported here; the
# entry point needs every one of these modules anyway, so this costs its import nothing more.

from functions.reset.adapters import FirestoreResetRepository, default_repository
from functions.reset.entry import decode_schedule_event, handle_schedule_event
from functions.reset.plan import request_from_message
from functions.reset.ports import (
    AuditState,
    CustomerDoc,
    ResetIncompleteError,
    ResetIssue,
    ResetRepository,
    ResetRequest,
    ResetSummary,
    ResetWrite,
    ScheduleMessageError,
)
from functions.reset.service import (
    PAGE_SIZE,
    function_deadline,
    raise_if_incomplete,
    run_reset,
)

__all__ = [
    "PAGE_SIZE",
    "AuditState",
    "CustomerDoc",
    "FirestoreResetRepository",
    "ResetIncompleteError",
    "ResetIssue",
    "ResetRepository",
    "ResetRequest",
    "ResetSummary",
    "ResetWrite",
    "ScheduleMessageError",
    "decode_schedule_event",
    "default_repository",
    "function_deadline",
    "handle_schedule_event",
    "raise_if_incomplete",
    "request_from_message",
    "run_reset",
]
