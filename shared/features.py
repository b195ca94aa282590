"""Feature resolution: tier default, customer flags, overrides, then the global kill switch.

Every answer carries the reason it came out that way. `_global` can switch a feature off, never on.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from shared.models import BundleTier, Feature, FeatureFlags
from shared.tiers import tier_spec


class Reason(enum.StrEnum):
    """Which layer decided a feature."""

    TIER_DEFAULT = "tier_default"
    CUSTOMER_FLAG = "customer_flag"
    OVERRIDE = "override"
    ROLLOUT = "rollout"
    GLOBAL_KILL_SWITCH = "global_kill_switch"


@dataclass(frozen=True, slots=True)
class FeatureDecision:
    """Whether a feature is on for a customer, and why."""

    feature: Feature
    enabled: bool
    reason: Reason
    tier: BundleTier

    def explain(self) -> str:
        """One human sentence, for logs and the CLI."""
        state = "on" if self.enabled else "off"
        why = {
            Reason.TIER_DEFAULT: f"default of tier {self.tier.value}",
            Reason.CUSTOMER_FLAG: "set in the customer's feature_flags document",
            Reason.OVERRIDE: "set in the customer's feature_overrides",
            Reason.ROLLOUT: f"turned on by the gradual rollout (feature_rollouts/{self.feature})",
            Reason.GLOBAL_KILL_SWITCH: "switched off globally in feature_flags/_global",
        }[self.reason]
        return f"{self.feature.value} is {state}: {why}"


def _flag_map(flags: FeatureFlags | Mapping[Feature, bool] | None) -> Mapping[Feature, bool]:
    if flags is None:
        return {}
    if isinstance(flags, FeatureFlags):
        return flags.flags()
    return flags


def resolve_feature(
    feature: Feature,
    tier: BundleTier,
    customer_flags: FeatureFlags | Mapping[Feature, bool] | None = None,
    overrides: Mapping[Feature, bool] | None = None,
    global_flags: FeatureFlags | Mapping[Feature, bool] | None = None,
) -> FeatureDecision:
    """Resolve one feature for a customer of `tier`."""
    enabled, reason = tier_spec(tier).has(feature), Reason.TIER_DEFAULT
    flags = _flag_map(customer_flags)
    # A flag a rollout turned on (listed in `rollouts`, and still on) says so.
    rolled = isinstance(customer_flags, FeatureFlags) and feature in (customer_flags.rollouts or {})
    flag_reason = Reason.ROLLOUT if rolled and flags.get(feature) is True else Reason.CUSTOMER_FLAG
    for layer, layer_reason in ((flags, flag_reason), (overrides or {}, Reason.OVERRIDE)):
        if feature in layer:
            enabled, reason = layer[feature], layer_reason
    # The global document is a kill switch only: a True there means nothing.
    if _flag_map(global_flags).get(feature) is False:
        enabled, reason = False, Reason.GLOBAL_KILL_SWITCH
    return FeatureDecision(feature, enabled, reason, tier)


def resolve_features(
    tier: BundleTier,
    customer_flags: FeatureFlags | Mapping[Feature, bool] | None = None,
    overrides: Mapping[Feature, bool] | None = None,
    global_flags: FeatureFlags | Mapping[Feature, bool] | None = None,
) -> dict[Feature, FeatureDecision]:
    """Resolve every feature for a customer of `tier`."""
    return {f: resolve_feature(f, tier, customer_flags, overrides, global_flags) for f in Feature}
