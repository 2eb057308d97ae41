"""Whether M's dream can be trusted: does M see the real game's deaths coming?

A controller trained in the dream is only as good as the dream's deaths are real. Along a real-game
episode, M (teacher-forced by the real frames, through V) gives after every step t the probability
that the step ended the episode, the very number whose crossing of 0.5 ends a dream. Per episode:

- a real death is *foreseen* when that probability exceeds 0.5 on one of the last ``FORESIGHT_STEPS``
  steps before it (the death's own step included);
- *false alarms* are the steps at least ``FAR_STEPS`` steps before the episode's end (a death, or the
  step cap, after which the future is unknown) where the probability exceeds 0.5: there the dream
  would have killed an agent the game let live.

A trusted dream foresees most deaths of the policy being judged with few false alarms. M learns from
the random policy's episodes; a controller that finds states where M is blind to death scores high in
the dream and low in the game.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

FORESIGHT_STEPS = 5  # K: a death is foreseen if M's probability passes 0.5 within its last K steps
FAR_STEPS = 50  # steps at least this far from the episode's end count for false alarms
THRESHOLD = 0.5  # the dream's own test: an episode ends where sigmoid(done logit) > 0.5


@dataclass(frozen=True)
class EpisodeForesight:
    """One real episode seen through M."""

    died: bool  # the game ended it (not the step cap)
    foreseen: bool  # died, and M's death probability passed 0.5 within the last K steps
    far_steps: int  # steps at least FAR_STEPS before the end
    far_alarms: int  # of those, the steps where M's death probability passed 0.5


def episode_foresight(death_probability: Iterable[float], died: bool) -> EpisodeForesight:
    """The foresight of one episode from M's death probability after each of its steps."""
    p = np.asarray(list(death_probability), dtype=np.float64)
    alarms = p > THRESHOLD
    far = alarms[: max(len(p) - FAR_STEPS, 0)]
    return EpisodeForesight(died=bool(died), foreseen=bool(died and alarms[-FORESIGHT_STEPS:].any()),
                            far_steps=int(far.size), far_alarms=int(far.sum()))


def summarize(episodes: Iterable[EpisodeForesight | dict[str, Any] | None]) -> dict[str, Any] | None:
    """The figures of many episodes: deaths, the fraction foreseen, the false-alarm rate (per far
    step); None when no episode was seen through M (e.g. an M without a done head)."""
    seen = [EpisodeForesight(**e) if isinstance(e, dict) else e for e in episodes if e is not None]
    if not seen:
        return None
    deaths = sum(e.died for e in seen)
    foreseen = sum(e.foreseen for e in seen)
    far_steps = sum(e.far_steps for e in seen)
    far_alarms = sum(e.far_alarms for e in seen)
    return {"episodes": len(seen), "deaths": deaths, "foreseen": foreseen,
            "foreseen_fraction": foreseen / deaths if deaths else None,
            "far_steps": far_steps, "false_alarm_rate": far_alarms / far_steps if far_steps else None,
            "foresight_steps": FORESIGHT_STEPS, "far": FAR_STEPS}


def as_details(foresight: EpisodeForesight) -> dict[str, Any]:
    """Plain values, to travel from a worker rank with the episode's return."""
    return asdict(foresight)


def describe(figures: dict[str, Any] | None) -> str:
    """One line: "M foresaw 74 of 100 deaths (74%) within 5 steps; false alarms on 0.3% of steps ..."."""
    if not figures:
        return "M's foresight: not measured (no done head)"
    fraction = figures["foreseen_fraction"]
    rate = figures["false_alarm_rate"]
    foreseen = (f"M foresaw {figures['foreseen']} of {figures['deaths']} deaths ({fraction:.0%}) within "
                f"{figures['foresight_steps']} steps" if figures["deaths"] else "no deaths")
    alarms = (f"false alarms on {rate:.1%} of steps >= {figures['far']} steps before the end"
              if rate is not None else "no steps far from an end")
    return f"{foreseen}; {alarms}"
