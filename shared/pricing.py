"""The versioned rate card and the cost estimate of a usage event, in `Decimal`.

The card is data (`shared/data/rate_card.json`); every record stores the version that priced it.
Costs are rounded half-up to cents. Actions the card does not know are not billable (cost 0).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_UP, Context, Decimal
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.errors import FieldError
from shared.models import BundleTier, UsageEvent

CENT: Final = Decimal("0.01")
_ZERO: Final = Decimal(0)
_EXACT: Final = Context(prec=1000, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_UP)
"""Wide enough that every product and sum of finite floats, ints and rates is exact: a cost is
rounded once, to cents, at the end. (The default context keeps 28 digits: it would round a
sum silently before the cents, which can move a cost by one cent, and it cannot quantize a
cost of 1e26 or more at all.)"""


class TierRates(BaseModel):
    """USD prices for one tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    compute_minute: Decimal = Field(ge=0)
    storage_gb: Decimal = Field(ge=0)
    episode: Decimal = Field(ge=0)


class RateCard(BaseModel):
    """A versioned rate card."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str = Field(min_length=1)
    currency: str = "USD"
    effective_from: str | None = None
    billable_actions: frozenset[str]
    rates: dict[BundleTier, TierRates]

    @field_validator("rates")
    @classmethod
    def _every_tier(cls, rates: dict[BundleTier, TierRates]) -> dict[BundleTier, TierRates]:
        missing = set(BundleTier) - set(rates)
        if missing:
            raise ValueError(f"rate card lacks tiers {sorted(t.value for t in missing)}")
        return rates


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """The price of one usage event."""

    amount: Decimal
    billable: bool
    rate_card_version: str
    tier: BundleTier
    lines: MappingProxyType[str, Decimal]
    """Unrounded cost per component (compute, storage, episodes)."""


def load_rate_card(data: str | bytes | dict[str, Any] | None = None) -> RateCard:
    """Parse a rate card; without arguments, the packaged default."""
    if data is None:
        return default_rate_card()
    if isinstance(data, dict):
        return RateCard.model_validate(data)
    return RateCard.model_validate(json.loads(data))


@functools.cache
def default_rate_card() -> RateCard:
    """The rate card shipped with the package (`shared/data/rate_card.json`)."""
    text = resources.files("shared").joinpath("data/rate_card.json").read_text(encoding="utf-8")
    return RateCard.model_validate(json.loads(text))


def to_decimal(value: float | int | None) -> Decimal:
    """Exact decimal of the number as written (45.5 -> Decimal('45.5'), not its binary value)."""
    if value is None:
        return _ZERO
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def round_cents(amount: Decimal) -> Decimal:
    """Round half-up to cents (any size)."""
    return amount.quantize(CENT, ROUND_HALF_UP, _EXACT)


def estimate_cost(
    event: UsageEvent, tier: BundleTier, card: RateCard | None = None
) -> CostEstimate:
    """Price a usage event with the rates of `tier`."""
    card = card or default_rate_card()
    if event.action not in card.billable_actions:
        return CostEstimate(Decimal("0.00"), False, card.version, tier, MappingProxyType({}))
    rates = card.rates[tier]
    amounts = (
        to_decimal(event.compute_minutes),
        to_decimal(event.storage_gb),
        to_decimal(event.episodes_generated),
    )
    # Exact products and sums (a float has at most 17 digits and exponents within +-308: the
    # 1000-digit context never rounds), then one rounding to cents.
    mul, add = _EXACT.multiply, _EXACT.add
    compute = mul(amounts[0], rates.compute_minute)
    storage = mul(amounts[1], rates.storage_gb)
    episodes = mul(amounts[2], rates.episode)
    total = round_cents(add(add(compute, storage), episodes))
    lines = {"compute": compute, "storage": storage, "episodes": episodes}
    return CostEstimate(total, True, card.version, tier, MappingProxyType(lines))


_CENTS_PER_USD: Final = Decimal(100)
MAX_EVENT_COST_CENTS: Final = 10**14
"""Most one event may cost (10^12 USD, as `MAX_EVENT_COUNT` bounds its count): the month
summary's `cost_cents` is a 64-bit Firestore integer that adds events up, so one event must
stay far below 2^63 - 1."""
_AMOUNTS: Final = (
    ("compute", "compute_minutes"),
    ("storage", "storage_gb"),
    ("episodes", "episodes_generated"),
)


def cost_problem(event: UsageEvent, cost: CostEstimate) -> FieldError | None:
    """The amount that makes an event cost more than `MAX_EVENT_COST_CENTS`, else None."""
    if cost.amount * _CENTS_PER_USD <= MAX_EVENT_COST_CENTS:
        return None
    _, name = max((cost.lines.get(line, Decimal(0)), name) for line, name in _AMOUNTS)
    expected = (
        f"an amount costing at most {MAX_EVENT_COST_CENTS} cents (10^12 USD) per event at the "
        f"{cost.tier.value} rates: the 64-bit counters add events up"
    )
    return FieldError(name, getattr(event, name), expected)
