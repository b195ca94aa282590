"""`blueprint config customer|scene ID`: what `CustomerConfigService` answers, explained."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from ops.cli.common import CliError, Run, check_document_id, run_of, unknown_customer

if TYPE_CHECKING:
    from shared.config_service import CustomerConfig, CustomerConfigService, SceneConfig

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

config_app = typer.Typer(help="What CustomerConfigService answers.", no_args_is_help=False)


def register(app: typer.Typer) -> None:
    """The `config` group."""
    app.add_typer(config_app, name="config")


@config_app.callback()
def config_group() -> None:
    """What CustomerConfigService answers, explained."""


def _service(run: Run) -> CustomerConfigService:
    from shared.config.adapters import FirestoreConfigReader  # noqa: PLC0415
    from shared.config_service import CustomerConfigService  # noqa: PLC0415

    return CustomerConfigService(FirestoreConfigReader(client=run.client_factory()), live=False)


@config_app.command("customer")
def customer(
    ctx: typer.Context,
    customer_id: Annotated[
        str, typer.Argument(metavar="ID", callback=check_document_id, help="customer id")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="the answer as one JSON object")] = False,
) -> None:
    """A customer's tier and each feature with its reason.

    An id without a customer document is an error (exit 1), as in `usage report`, after the
    defaults the service would serve it are shown, marked as such."""
    run = run_of(ctx)
    config = _service(run).get_customer_config(customer_id)
    # Stale: Firestore failed, so the document's absence is not known.
    unknown = not config.exists and not config.stale
    if as_json:
        run.json(customer_json(config))
    else:
        _print_customer(run, customer_id, config)
    if unknown:
        after = "; shown: the defaults it would be served" if not as_json else ""
        raise unknown_customer("config customer", customer_id, after=after)


def _print_customer(run: Run, customer_id: str, config: CustomerConfig) -> None:
    from rich.table import Table  # noqa: PLC0415

    run.print(f"customer {customer_id}: tier {config.tier.value}" + _flags(config))
    table = Table("feature", "on", "reason", box=None, pad_edge=False)
    for decision in config.features.values():
        table.add_row(
            decision.feature.value, "yes" if decision.enabled else "no", decision.explain()
        )
    run.console().print(table)
    for problem in config.problems:
        run.print(f"  warning: {problem}")


@config_app.command("scene")
def scene(
    ctx: typer.Context,
    scene_id: Annotated[
        str, typer.Argument(metavar="ID", callback=check_document_id, help="scene id")
    ],
    customer_id: Annotated[
        str | None,
        typer.Option(
            "--customer",
            callback=check_document_id,
            help="the scene's customer, when known (one round trip)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the answer as one JSON object")] = False,
) -> None:
    """A scene's effective values with their source, and every clamp."""
    run = run_of(ctx)
    answer = _service(run).get_scene_config(scene_id, customer_id=customer_id)
    if not answer.exists and not answer.stale:
        # Defaults for a scene that is not there would look like an answer: a typo, most likely.
        raise CliError(f"config scene: no scene {scene_id!r} (no scenes/{scene_id} document)")
    if as_json:
        run.json(scene_json(answer))
        return
    from rich.table import Table  # noqa: PLC0415

    eff = answer.effective
    run.print(
        f"scene {scene_id}: customer {eff.customer_id}, tier {eff.bundle_tier.value} "
        f"(from {eff.tier_source})" + _flags(answer)
    )
    table = Table("setting", "value", "source", box=None, pad_edge=False)
    for name, value, source in _settings(answer):
        table.add_row(name, repr(value), source)
    run.console().print(table)
    for clamp in answer.clamped:
        run.print(
            f"  clamped {clamp.field}: {clamp.requested!r} -> {clamp.allowed!r} ({clamp.reason})"
        )
    for problem in answer.problems:
        run.print(f"  warning: {problem}")


def _settings(answer: SceneConfig) -> list[tuple[str, Any, str]]:
    eff = answer.effective
    out = []
    for name in SCENE_FIELDS:
        value = getattr(eff, name)
        out.append((name, getattr(value, "value", value), str(eff.sources.get(name, "tier"))))
    return out


def _flags(answer: Any) -> str:
    notes = []
    if answer.stale:
        # Firestore failed: whether the document exists is not known, and not claimed.
        notes.append("STALE: Firestore unavailable")
    elif not getattr(answer, "exists", True):
        notes.append("UNKNOWN: no such document; the defaults it would be served")
    return f" [{'; '.join(notes)}]" if notes else ""


def customer_json(config: CustomerConfig) -> dict[str, Any]:
    """`config customer --json` (docs/cli.md)."""
    return {
        "customer_id": config.customer_id,
        "exists": config.exists,
        "stale": config.stale,
        "tier": config.tier.value,
        "features": {
            d.feature.value: {"enabled": d.enabled, "reason": d.reason.value, "text": d.explain()}
            for d in config.features.values()
        },
        "problems": [str(p) for p in config.problems],
    }


def scene_json(answer: SceneConfig) -> dict[str, Any]:
    """`config scene --json` (docs/cli.md)."""
    eff = answer.effective
    return {
        "scene_id": answer.scene_id,
        "exists": answer.exists,
        "stale": answer.stale,
        "customer_id": eff.customer_id,
        "tier": eff.bundle_tier.value,
        "tier_source": str(eff.tier_source),
        "settings": {name: {"value": v, "source": s} for name, v, s in _settings(answer)},
        "clamped": [
            {"field": c.field, "requested": c.requested, "allowed": c.allowed, "reason": c.reason}
            for c in answer.clamped
        ],
        "problems": [str(p) for p in answer.problems],
    }
