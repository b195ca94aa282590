"""Resolution rules: tier table, features with reasons, effective scene config with clamps."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.features import Reason, resolve_feature, resolve_features
from shared.models import BundleTier, Customer, DataPackTier, Feature, FeatureFlags, Scene
from shared.scene_config import GATED_BOOLEANS, effective_scene_config
from shared.tiers import KNOWN_VLA_MODELS, TIERS

# The specification's "Bundle Tier Specifications", row by row, as written there.
SCHEMA_TABLE: dict[str, dict[str, Any]] = {
    "standard": dict(data="core", eps=10, maxv=250, q=0.70, vla=(), lang=0, av=False, s2r=False),
    "pro": dict(
        data="plus",
        eps=10,
        maxv=500,
        q=0.80,
        vla=("openvla", "smolvla"),
        lang=10,
        av=True,
        s2r=False,
    ),
    "enterprise": dict(
        data="full",
        eps=10,
        maxv=1000,
        q=0.85,
        vla=("openvla", "pi0", "smolvla", "groot"),
        lang=15,
        av=True,
        s2r=True,
    ),
    "foundation": dict(
        data="full", eps=25, maxv=2000, q=0.90, vla=KNOWN_VLA_MODELS, lang=20, av=True, s2r=True
    ),
}


@pytest.mark.parametrize("tier", list(BundleTier))
def test_scene_without_overrides_gets_the_tier_table(tier: BundleTier) -> None:
    row = SCHEMA_TABLE[tier.value]
    customer = Customer(schema_version=1, bundle_tier=tier)
    config = effective_scene_config(Scene(schema_version=1, customer_id="c"), customer)
    assert config.bundle_tier is tier
    assert config.data_pack_tier.value == row["data"]
    assert config.episodes_per_variation == row["eps"]
    assert config.max_variations == row["maxv"]
    assert config.min_quality_score == pytest.approx(row["q"])
    assert set(config.vla_models) == set(row["vla"])
    assert config.num_language_variations == row["lang"]
    assert config.audio_narration_enabled is row["av"]
    assert config.subtitle_generation_enabled is row["av"]
    assert config.sim2real_enabled is row["s2r"]
    assert config.contact_rich_enabled is row["s2r"]
    assert config.tactile_enabled is row["s2r"]
    assert config.clamped == ()


@pytest.mark.parametrize("tier", list(BundleTier))
@pytest.mark.parametrize("feature", list(Feature))
def test_feature_defaults_come_from_the_tier(tier: BundleTier, feature: Feature) -> None:
    decision = resolve_feature(feature, tier)
    assert decision.enabled is (feature in TIERS[tier].features)
    assert decision.reason is Reason.TIER_DEFAULT


def test_layers_apply_in_order_with_reasons() -> None:
    tier = BundleTier.STANDARD
    f = Feature.TACTILE
    assert resolve_feature(f, tier, {f: True}).reason is Reason.CUSTOMER_FLAG
    assert resolve_feature(f, tier, {f: True}).enabled
    decision = resolve_feature(f, tier, {f: True}, overrides={f: False})
    assert (decision.enabled, decision.reason) == (False, Reason.OVERRIDE)
    decision = resolve_feature(f, tier, {f: False}, overrides={f: True}, global_flags={f: False})
    assert (decision.enabled, decision.reason) == (False, Reason.GLOBAL_KILL_SWITCH)
    assert "globally" in decision.explain()


def test_global_true_never_turns_a_feature_on() -> None:
    decision = resolve_feature(
        Feature.SIM2REAL, BundleTier.STANDARD, global_flags={Feature.SIM2REAL: True}
    )
    assert (decision.enabled, decision.reason) == (False, Reason.TIER_DEFAULT)


def test_schema_example_scene_is_clamped_to_pro() -> None:
    scene = Scene(
        schema_version=1,
        customer_id="lab_001",
        data_pack_tier=DataPackTier.FULL,
        vla_models=["openvla", "pi0"],
        sim2real_enabled=True,
        tactile_enabled=False,
    )
    customer = Customer(schema_version=1, bundle_tier=BundleTier.PRO)
    config = effective_scene_config(scene, customer)
    clamped = {c.field: c for c in config.clamped}
    assert set(clamped) == {"data_pack_tier", "vla_models", "sim2real_enabled"}
    assert config.data_pack_tier is DataPackTier.PLUS
    assert config.vla_models == ("openvla",)
    assert clamped["vla_models"].requested == ["openvla", "pi0"]
    assert config.sim2real_enabled is False


def test_scene_tier_wins_then_customer_then_standard() -> None:
    customer = Customer(schema_version=1, bundle_tier=BundleTier.PRO)
    scene = Scene(schema_version=1, customer_id="c", bundle_tier=BundleTier.ENTERPRISE)
    assert effective_scene_config(scene, customer).tier_source == "scene"
    plain = Scene(schema_version=1, customer_id="c")
    assert effective_scene_config(plain, customer).bundle_tier is BundleTier.PRO
    config = effective_scene_config(plain, None)
    assert (config.bundle_tier, config.tier_source) == (BundleTier.STANDARD, "default")


def test_customer_preference_sits_between_scene_and_tier() -> None:
    customer = Customer(schema_version=1, bundle_tier=BundleTier.PRO, audio_narration_enabled=False)
    config = effective_scene_config(Scene(schema_version=1, customer_id="c"), customer)
    assert config.audio_narration_enabled is False
    assert config.sources["audio_narration_enabled"] == "customer"
    scene = Scene(schema_version=1, customer_id="c", audio_narration_enabled=True)
    assert effective_scene_config(scene, customer).audio_narration_enabled is True


def test_global_kill_switch_clamps_a_scene_request() -> None:
    customer = Customer(schema_version=1, bundle_tier=BundleTier.FOUNDATION)
    scene = Scene(schema_version=1, customer_id="c", tactile_enabled=True)
    kill = FeatureFlags(schema_version=1, tactile=False)
    config = effective_scene_config(scene, customer, global_flags=kill)
    assert config.tactile_enabled is False
    assert [c.field for c in config.clamped] == ["tactile_enabled"]
    assert config.features[Feature.TACTILE].reason is Reason.GLOBAL_KILL_SWITCH


# --- properties -------------------------------------------------------------------------

flag_maps = st.dictionaries(st.sampled_from(list(Feature)), st.booleans())
tiers = st.sampled_from(list(BundleTier))
models = st.lists(st.sampled_from([*KNOWN_VLA_MODELS, "octo", "rt2"]), max_size=6)
optional_bool = st.none() | st.booleans()


@given(tier=tiers, customer=flag_maps, overrides=flag_maps, global_flags=flag_maps)
def test_global_never_turns_a_feature_on(
    tier: BundleTier,
    customer: dict[Feature, bool],
    overrides: dict[Feature, bool],
    global_flags: dict[Feature, bool],
) -> None:
    without = resolve_features(tier, customer, overrides, None)
    with_global = resolve_features(tier, customer, overrides, global_flags)
    for feature in Feature:
        assert with_global[feature].enabled <= without[feature].enabled
        if global_flags.get(feature) is False:
            assert not with_global[feature].enabled


@settings(max_examples=300)
@given(
    scene_tier=st.none() | tiers,
    customer_tier=tiers,
    data_pack=st.none() | st.sampled_from(list(DataPackTier)),
    vla=st.none() | models,
    max_variations=st.none() | st.integers(1, 1_000_000),
    languages=st.none() | st.integers(0, 1000),
    booleans=st.fixed_dictionaries({name: optional_bool for name in GATED_BOOLEANS}),
    customer_flags=flag_maps,
    overrides=flag_maps,
    global_flags=flag_maps,
)
def test_effective_config_never_exceeds_entitlement(
    scene_tier: BundleTier | None,
    customer_tier: BundleTier,
    data_pack: DataPackTier | None,
    vla: list[str] | None,
    max_variations: int | None,
    languages: int | None,
    booleans: dict[str, bool | None],
    customer_flags: dict[Feature, bool],
    overrides: dict[Feature, bool],
    global_flags: dict[Feature, bool],
) -> None:
    scene = Scene(
        schema_version=1,
        customer_id="c",
        bundle_tier=scene_tier,
        data_pack_tier=data_pack,
        vla_models=vla,
        max_variations=max_variations,
        num_language_variations=languages,
        **booleans,
    )
    customer = Customer(schema_version=1, bundle_tier=customer_tier, feature_overrides=overrides)
    config = effective_scene_config(
        scene,
        customer,
        FeatureFlags(schema_version=1, **{f.value: v for f, v in customer_flags.items()}),
        FeatureFlags(schema_version=1, **{f.value: v for f, v in global_flags.items()}),
    )
    spec = TIERS[config.bundle_tier]
    assert config.data_pack_tier.rank <= spec.data_pack.rank
    assert set(config.vla_models) <= set(spec.vla_models)
    assert config.max_variations <= spec.max_variations
    assert config.num_language_variations <= spec.language_variations
    for name, feature in GATED_BOOLEANS.items():
        if getattr(config, name):
            assert config.features[feature].enabled
    if config.vla_models:
        assert config.features[Feature.VLA_FINETUNING].enabled
    # Every value the scene asked for and did not get is listed as clamped.
    clamped = {c.field for c in config.clamped}
    for name in GATED_BOOLEANS:
        if booleans[name] is True and not getattr(config, name):
            assert name in clamped


def test_a_flag_a_rollout_turned_on_gives_the_reason_rollout() -> None:
    tier, f = BundleTier.STANDARD, Feature.TACTILE
    rolled = FeatureFlags(schema_version=1, tactile=True, rollouts={f: 10})
    decision = resolve_feature(f, tier, rolled)
    assert (decision.enabled, decision.reason) == (True, Reason.ROLLOUT)
    assert "gradual rollout" in decision.explain()
    # Switched off by hand since: the customer's flag decides, not the rollout.
    off = FeatureFlags(schema_version=1, tactile=False, rollouts={f: 10})
    assert resolve_feature(f, tier, off).reason is Reason.CUSTOMER_FLAG
    # Only the rolled-out feature says rollout; overrides and _global still win.
    other = resolve_feature(Feature.SIM2REAL, tier, rolled)
    assert other.reason is Reason.TIER_DEFAULT
    assert resolve_feature(f, tier, rolled, overrides={f: False}).reason is Reason.OVERRIDE
    killed = resolve_feature(f, tier, rolled, global_flags={f: False})
    assert (killed.enabled, killed.reason) == (False, Reason.GLOBAL_KILL_SWITCH)
