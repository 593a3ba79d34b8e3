"""Bodies of ``maestro promote --stage …`` and of ``maestro train --promote --staged``:
move a registered version through the rollout stages (MLflow aliases, see
:mod:`training.stages`). MLflow is reached through :mod:`training` (imported here only
when a command runs, so ``maestro --help`` stays light)."""

from __future__ import annotations

from typing import Any

from cli.errors import CommandError
from policies.catalog import load_catalog
from serving.settings import Settings


def _loadable(settings: Settings, decision_point: str, version: str) -> None:
    """Raise unless ``version`` exists and its policy loads (an alias never points at a
    version the service could not serve)."""
    from policies.registry import load_policy
    from training import tracking

    try:
        data = tracking.load_version_bytes(decision_point, version, settings.tracking_uri)
    except Exception as exc:
        raise CommandError(
            f"no loadable version {version} of {tracking.model_name(decision_point)}: {exc}"
        ) from exc
    load_policy(data)


def _default_version(settings: Settings, decision_point: str, stage: str) -> str:
    """The version a stage takes when none is named: the previous stage's (canary ← shadow,
    champion ← canary), or the newest registered version for ``shadow``."""
    from training import stages

    state = stages.read_state(decision_point, settings.tracking_uri)
    found = {
        stages.SHADOW: stages.latest_version(decision_point, settings.tracking_uri),
        stages.CANARY: state.shadow,
        stages.CHAMPION: state.canary,
    }[stage]
    if found is None:
        before = {stages.CANARY: "shadow", stages.CHAMPION: "canary"}.get(stage, "registered")
        raise CommandError(
            f"--version: {decision_point} has no {before} version to move to {stage}; name one"
        )
    return found


def stage_command(
    settings: Settings,
    decision_point: str,
    stage: str,
    version: int | None,
    share: float | None,
) -> str:
    """``maestro promote --decision-point D --stage S [--version N] [--share X]``."""
    from training import stages

    load_catalog(settings.catalog_file)[decision_point]  # unknown names raise (exit 2)
    target = str(version) if version is not None else _default_version(
        settings, decision_point, stage
    )
    _loadable(settings, decision_point, target)
    state = stages.move_stage(decision_point, stage, target, settings.tracking_uri, share)
    return f"{decision_point}: {stage} -> version {target} ({describe(state.as_dict())})"


def describe(state: dict[str, Any]) -> str:
    """One line of a decision point's stages."""
    parts = [f"champion v{state['champion']}" if state["champion"] else "no champion"]
    if state["shadow"]:
        parts.append(f"shadow v{state['shadow']}")
    if state["canary"]:
        parts.append(f"canary v{state['canary']} at {state['share']:.0%}")
    if state["stage"] == "watch":
        parts.append(
            f"watched against previous v{state['previous_champion']} at {state['share']:.0%}"
        )
    return ", ".join(parts)


def stage_shadows(settings: Settings, versions: dict[str, str]) -> list[str]:
    """``train --promote --staged``: each passing candidate becomes its point's shadow."""
    from training import stages

    lines = []
    for dp, version in versions.items():
        state = stages.move_stage(dp, stages.SHADOW, version, settings.tracking_uri)
        lines.append(f"{dp}: shadow -> version {version} ({describe(state.as_dict())})")
    return lines
