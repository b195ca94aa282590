"""Collection, topic and job names, and Pub/Sub resource-name builders: the suite's public names.

Other systems (producers, deploy scripts, dashboards) depend on these defaults; the settings
object (`shared.settings.Settings`) can override each of them.
"""

from __future__ import annotations

from typing import Final

# Collections
CUSTOMERS: Final = "customers"
SCENES: Final = "scenes"
FEATURE_FLAGS: Final = "feature_flags"
USAGE_TRACKING: Final = "usage_tracking"
USAGE_REJECTIONS: Final = "usage_rejections"
QUOTA_RESETS: Final = "quota_resets"
QUOTA_ALERTS: Final = "quota_alerts"
USAGE_COUNTERS: Final = "usage_counters"
"""`usage_counters/{customer}_{YYYY-MM}`: the month summary, the sums of the month's records
(written by the fold only)."""
USAGE_FOLD_STATE: Final = "usage_fold_state"
"""`usage_fold_state/{bucket}`: the fold's watermark per bucket; `usage_fold_state/months`:
the last month the fold closed."""
FEATURE_ROLLOUTS: Final = "feature_rollouts"
"""`feature_rollouts/{feature}`: audit of a gradual rollout."""

GLOBAL_FLAGS_DOC: Final = "_global"
"""Document id in `feature_flags` holding the global kill switches (may only switch OFF)."""

# Topics
USAGE_EVENTS_TOPIC: Final = "usage-events"
CONFIG_INVALIDATIONS_TOPIC: Final = "config-invalidations"
QUOTA_ALERTS_TOPIC: Final = "quota-alerts"
QUOTA_RESET_SCHEDULE_TOPIC: Final = "quota-reset-schedule"
USAGE_EVENTS_DEAD_LETTER_TOPIC: Final = "usage-events-dead-letter"
USAGE_FOLD_SCHEDULE_TOPIC: Final = "usage-fold-schedule"
SCHEDULES_DEAD_LETTER_TOPIC: Final = "schedules-dead-letter"
"""Dead letters of the scheduled jobs' subscriptions (monthly reset, fold)."""
QUOTA_RESET_DEAD_LETTERS: Final = "dead_letters"
"""Subcollection `quota_resets/{YYYY-MM}/dead_letters/{key}`: dead-lettered reset messages of
that month (the audit document itself is the reset's; this never creates or changes it)."""

# Cloud Scheduler
QUOTA_RESET_JOB: Final = "monthly-quota-reset"
QUOTA_RESET_CRON: Final = "0 0 1 * *"
QUOTA_RESET_TIME_ZONE: Final = "UTC"
USAGE_FOLD_JOB: Final = "usage-fold"
USAGE_FOLD_CRON: Final = "* * * * *"


def topic_path(project: str, topic: str) -> str:
    """Full Pub/Sub topic resource name."""
    return f"projects/{project}/topics/{topic}"


def subscription_path(project: str, subscription: str) -> str:
    """Full Pub/Sub subscription resource name."""
    return f"projects/{project}/subscriptions/{subscription}"
