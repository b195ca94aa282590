"""`blueprint config customer|scene ID`: what `CustomerConfigService` answers, explained."""

from __future__ import annotations

import argparse
from typing import Any, Final, TextIO

from ops.cli.common import ClientFactory, document_id

SCENE_FIELDS: Final = (
    "data_pack_tier",
    "episodes_per_variation",
    "max_variations",
    "min_quality_score",
    "vla_models",
    "num_language_variations",
    "audio_narration_enabled",
    "subtitle_generation_enabled",
    "sim2real_enabled",
    "contact_rich_enabled",
    "tactile_enabled",
)
"""The effective scene settings shown, in this order."""


def add_parser(sub: Any) -> None:
    """The `config` subcommand."""
    conf = sub.add_parser("config", help="what CustomerConfigService answers")
    conf.add_argument("what", choices=("customer", "scene"))
    conf.add_argument("id", type=document_id("id"), help="customer or scene id")
    conf.add_argument(
        "--customer",
        type=document_id("--customer"),
        help="the scene's customer, when known (one round trip)",
    )
    conf.set_defaults(func=cmd_config)


def cmd_config(args: argparse.Namespace, client_factory: ClientFactory, out: TextIO) -> int:
    """Show what CustomerConfigService answers for a customer or a scene."""
    from shared.config.adapters import FirestoreConfigReader  # noqa: PLC0415
    from shared.config_service import CustomerConfigService  # noqa: PLC0415

    service = CustomerConfigService(FirestoreConfigReader(client=client_factory()), live=False)
    if args.what == "customer":
        config = service.get_customer_config(args.id)
        print(f"customer {args.id}: tier {config.tier.value}" + _flags(config), file=out)
        for decision in config.features.values():
            print(f"  {decision.explain()}", file=out)
        problems = config.problems
    else:
        scene = service.get_scene_config(args.id, customer_id=args.customer)
        eff = scene.effective
        print(
            f"scene {args.id}: customer {eff.customer_id}, tier {eff.bundle_tier.value} "
            f"(from {eff.tier_source})" + _flags(scene),
            file=out,
        )
        for name in SCENE_FIELDS:
            value = getattr(eff, name)
            value = getattr(value, "value", value)
            print(f"  {name} = {value!r} ({eff.sources.get(name, 'tier')})", file=out)
        for clamp in scene.clamped:
            print(
                f"  clamped {clamp.field}: {clamp.requested!r} -> {clamp.allowed!r} "
                f"({clamp.reason})",
                file=out,
            )
        problems = scene.problems
    for problem in problems:
        print(f"  warning: {problem}", file=out)
    return 0


def _flags(answer: Any) -> str:
    notes = []
    if not getattr(answer, "exists", True):
        notes.append("no such document: defaults")
    if answer.stale:
        notes.append("STALE: Firestore unavailable")
    return f" [{'; '.join(notes)}]" if notes else ""
