"""One place for configuration: a dataclass per stage, presets per environment, and the run's config.

Presets: ``paper`` (the original's sizes, for a big machine), ``small`` (a 2-core workstation in a few
hours), ``quick`` (minutes; a smoke test of the whole pipeline). Flags override preset fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from wm.cli import arg
from wm.envs import ENV_NAMES
from wm.policies import POLICY_NAMES

PRESET_NAMES = ["paper", "small", "quick"]
DEFAULT_ENV = "doom"
DEFAULT_PRESET = "small"

# Per env and preset, per stage: the values that differ from the stage dataclass's defaults.
PRESETS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "doom": {
        # The original: 64 workers x 200 episodes, uniform action held 1-10 tics, 2100-tic cap.
        "paper": {"extract": {"episodes": 12800, "policy": "hold", "max_steps": 2100}},
        "small": {"extract": {"episodes": 1000, "policy": "hold", "max_steps": 2100}},
        "quick": {"extract": {"episodes": 64, "policy": "hold", "max_steps": 2100}},
    },
    "carracing": {
        # The original: 64 workers x 200 episodes of 1000 frames.
        "paper": {"extract": {"episodes": 12800, "policy": "brownian", "max_steps": 1000}},
        "small": {"extract": {"episodes": 200, "policy": "brownian", "max_steps": 1000}},
        "quick": {"extract": {"episodes": 8, "policy": "brownian", "max_steps": 300}},
    },
}


def preset_note(stage: str, field: str) -> str:
    """`` (presets: doom quick 64, small 1000, paper 12800; ...)`` for a field's help."""
    parts = []
    for env, presets in PRESETS.items():
        stage_presets = {name: presets[name].get(stage, {}) for name in PRESET_NAMES}
        values = [f"{name} {v[field]}" for name, v in stage_presets.items() if field in v]
        if values:
            parts.append(f"{env} " + ", ".join(values))
    return f" (presets: {'; '.join(parts)})" if parts else ""


@dataclass
class ExtractConfig:
    """Collect random-policy episodes into DIR/record/, one file per episode."""

    run: str | None = arg(
        None, "run directory shared by every stage; episodes go to RUN/record/", required=True
    )
    env: str | None = arg(
        None, f"environment; default: the run's, else {DEFAULT_ENV}", choices=ENV_NAMES
    )
    preset: str = arg(DEFAULT_PRESET, "preset that sets the other fields", choices=PRESET_NAMES)
    episodes: int | None = arg(
        None,
        "number of episodes in the data set (episode indices 0..N-1)" + preset_note("extract", "episodes"),
    )
    policy: str | None = arg(
        None,
        "random policy: hold (uniform action held 1-10 steps, the original Doom one), "
        "brownian (smooth random walk), uniform (new uniform action every step)"
        + preset_note("extract", "policy"),
        choices=POLICY_NAMES,
    )
    max_steps: int | None = arg(None, "cap on steps per episode" + preset_note("extract", "max_steps"))
    seed: int = arg(0, "run seed; episode i is made from the seed sequence (seed, i)")
    log_every: float = arg(10.0, "seconds between progress lines")


# The fields whose values change what the files hold: a run directory keeps them fixed.
EXTRACT_DATA_FIELDS = ("env", "policy", "max_steps", "seed")


def preset_values(stage: str, env: str, preset: str) -> dict[str, Any]:
    """The preset's fields for one stage (empty when the preset sets none)."""
    return dict(PRESETS[env][preset].get(stage, {}))


def as_dict(config: Any) -> dict[str, Any]:
    """A stage config as plain JSON-able values."""
    return dataclasses.asdict(config)
