"""One place for configuration: a dataclass per stage, presets per environment, and the run's config.

Presets: ``paper`` (the original's sizes, for a big machine), ``small`` (a 2-core workstation in a few
hours), ``quick`` (minutes; a smoke test of the whole pipeline), ``tiny`` (seconds; the tests'
end-to-end runs). Flags override preset fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from wm.core import cli
from wm.core.cli import arg
from wm.data.rundir import run_env, stage_config
from wm.envs.games import DOOM_SCENARIO_SKILL, ENV_NAMES
from wm.envs.policies import POLICY_NAMES

T = TypeVar("T")

PRESET_NAMES = ["paper", "small", "quick", "tiny"]
DEFAULT_ENV = "doom"
DEFAULT_PRESET = "small"

# Per env and preset, per stage: the values that differ from the stage dataclass's defaults.
_DOOM_VAE = {"z_size": 64, "episodes": 0}
_CARRACING_VAE = {"z_size": 32, "episodes": 0}
# M: Doom streams episodes with state carried across batches and a decaying learning rate;
# CarRacing trains on random windows with a constant one (REFERENCE.md section 4).
_DOOM_RNN = {"hidden_size": 512, "seq_len": 500, "lr_decay": 0.99999, "lr_min": 1e-5}
_CARRACING_RNN = {"hidden_size": 256, "seq_len": 999, "lr_decay": 1.0, "lr_min": 0.0}
# C: the original's population 64, 16 episodes per candidate, the mean evaluated every 25
# generations on 1024 episodes; generations as the paper's CarRacing run (~1800).
_PAPER_ES = {"generations": 1800, "popsize": 64, "num_episode": 16, "eval_every": 25, "eval_episodes": 1024}
# Doom's C learns in M's dream at the paper's best temperature (REFERENCE.md section 8).
_DOOM_DREAM = {"dream": True, "temperature": 1.15}
_TINY_ES = {"generations": 2, "popsize": 4, "num_episode": 1, "eval_every": 2, "eval_episodes": 2}
_QUICK_ES = {"generations": 3, "popsize": 8, "num_episode": 2, "eval_every": 3, "eval_episodes": 8}
# Iterative training (wm.pipeline --rounds; Doom): after C is trained in the dream, each round plays
# `episodes` real episodes with the best C, its parameters perturbed by N(0, sigma^2) per episode
# (sigma as the ES's initial step size), adds them to the data set held `round_weight` times per
# epoch, trains M `rnn_epochs` more epochs on it all and the ES `generations` more from the best C.
# Weight 4 (not yet measured): in the small run 2,000 random episodes are ~0.7M steps and a round of
# 200 controller episodes ~0.16M; held 4 times they are about half of an epoch, so M spends as many
# steps where the controller goes (where it was found blind) as on the random data it must not forget.
# On (3 rounds) in Doom's small preset, measured there (RESULTS.md); off in the others (0 rounds).
_DOOM_ROUNDS = {"rounds": 0, "sigma": 0.1, "round_weight": 4}
PRESETS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "doom": {
        # The original: 64 workers x 200 episodes, uniform action held 1-10 tics, 2100-tic cap;
        # V for 10 epochs (the paper's text says 1).
        "paper": {
            "extract": {"episodes": 12800, "policy": "hold", "max_steps": 2100},
            "vae": {**_DOOM_VAE, "epochs": 10},
            "rnn": {**_DOOM_RNN, "epochs": 400},
            "train": {**_PAPER_ES, **_DOOM_DREAM, "generations": 300},
            "rounds": {**_DOOM_ROUNDS, "episodes": 1000, "rnn_epochs": 40, "generations": 100},
        },
        # Sized for a 2-core machine: 108 min in all (RESULTS.md). V one pass over a third of the
        # episodes at a higher learning rate (Doom's frames vary little); M on all of them, in shorter
        # sequences of fewer streams, so the same timesteps give more gradient steps; then three rounds
        # of iterative training (measured: the dream/real ratio 2.6x -> 1.3x, the real score 595 ->
        # 787 -> 668 -> 783 on seeds 0, round 3 789 over 200 games; the first ES cut from 120 to 80
        # generations to pay for them).
        "small": {
            "extract": {"episodes": 2000, "policy": "hold", "max_steps": 2100},
            "vae": {**_DOOM_VAE, "epochs": 1, "lr": 1e-3, "episodes": 700},
            "rnn": {**_DOOM_RNN, "epochs": 12, "batch_size": 32, "seq_len": 100},
            "train": {**_DOOM_DREAM, "generations": 80, "popsize": 32, "num_episode": 8,
                      "eval_every": 10, "eval_episodes": 128},
            "rounds": {**_DOOM_ROUNDS, "rounds": 3, "episodes": 200, "rnn_epochs": 3, "generations": 40},
        },
        # The README's main job, within 10 minutes on 2 cores: V and M from 200 random episodes, and
        # C trained in the real game on their features (the paper's CarRacing recipe). An M from so
        # little data is no dream to train in: measured (RESULTS.md), every dream-trained quick C
        # (with or without a round of iterative training, at tau 1.15 to 2.0) found a blind spot of
        # the dream and stood against a wall (172) or barely beat the random policy (317); trained in
        # the game, C scores ~600. No rounds: they continue C in the dream.
        "quick": {
            "extract": {"episodes": 200, "policy": "hold", "max_steps": 2100},
            "vae": {**_DOOM_VAE, "epochs": 1, "lr": 1e-3, "episodes": 100},
            "rnn": {**_DOOM_RNN, "epochs": 10, "batch_size": 32, "seq_len": 100},
            "train": {"dream": False, "generations": 20, "popsize": 16, "num_episode": 4, "eval_every": 5,
                      "eval_episodes": 32, "envs_per_worker": 8},
        },
        "tiny": {
            "extract": {"episodes": 4, "policy": "hold", "max_steps": 2100},
            "vae": {**_DOOM_VAE, "epochs": 1},
            "rnn": {**_DOOM_RNN, "epochs": 1, "seq_len": 50, "batch_size": 8},
            "train": {**_TINY_ES, **_DOOM_DREAM},
            "rounds": {**_DOOM_ROUNDS, "episodes": 2, "rnn_epochs": 1, "generations": 2},
        },
    },
    "carracing": {
        # The paper's 10,000 random rollouts of 1000 frames (its code ran 64 workers x 200 = 12,800).
        "paper": {
            "extract": {"episodes": 10000, "policy": "brownian", "max_steps": 1000},
            "vae": {**_CARRACING_VAE, "epochs": 10},
            "rnn": {**_CARRACING_RNN, "epochs": 40},  # x 100 steps = the original's 4000
            "train": {**_PAPER_ES},
        },
        # Sized for a 2-core machine in about 2 hours: data and ES on the fast env (~3x cheaper per
        # agent step, BENCHMARKS.md), so twice the random episodes (V one pass over them) and a
        # population of 32 x 2 for 110 generations (measured, RESULTS.md: 885 over 100 official tracks;
        # 16 x 2 for 120: 820, 16 x 4 for 80: 678); the score is still the official env's.
        "small": {
            "pipeline": {"fast_env": True},
            "extract": {"episodes": 300, "policy": "brownian", "max_steps": 1000},
            "vae": {**_CARRACING_VAE, "epochs": 1, "lr": 1e-3},
            "rnn": {**_CARRACING_RNN, "epochs": 3, "seq_len": 500},
            "train": {"generations": 110, "popsize": 32, "num_episode": 2, "eval_every": 10,
                      "eval_episodes": 16, "envs_per_worker": 8, "off_track_stop": 100},
        },
        # Within 10 minutes on 2 cores: training on the fast env, scored on 20 official tracks (the
        # agent's and the random policy's) instead of 100.
        "quick": {
            "pipeline": {"eval_episodes": 20, "fast_env": True},
            "extract": {"episodes": 8, "policy": "brownian", "max_steps": 300},
            "vae": {**_CARRACING_VAE, "epochs": 1},
            "rnn": {**_CARRACING_RNN, "epochs": 1, "steps_per_epoch": 20, "seq_len": 100},
            "train": {**_QUICK_ES},
        },
        "tiny": {
            "extract": {"episodes": 2, "policy": "brownian", "max_steps": 50},
            "vae": {**_CARRACING_VAE, "epochs": 1},
            "rnn": {**_CARRACING_RNN, "epochs": 1, "steps_per_epoch": 2, "seq_len": 20, "batch_size": 4},
            "train": {**_TINY_ES, "max_steps": 50, "off_track_stop": 20},
        },
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


# Most episodes one command may ask for (a generation's tasks, an evaluation): far above any real
# run (the paper's: 64 x 16 per generation, 1,024 per evaluation), and low enough that a typo such
# as 1e9 is refused at once rather than stalling while its seeds are made.
MAX_EPISODES = 1_000_000

# The run's game: set once, when its data is made; every later stage plays it.
DOOM_SKILL_HELP = (f"Doom: ViZDoom skill of the run's game, 1 (easiest) to 5 (nightmare; the original's), "
                   f"kept for the whole run: V and M learn it, C is trained and scored in it; TakeCover "
                   f"plays 2, 3 and 4 alike (default: the scenario as ViZDoom ships it, take_cover.cfg's "
                   f"skill {DOOM_SCENARIO_SKILL})")
# Where the run's data and training play (wm.envs.fast_carracing); its scores are always official.
FAST_ENV_HELP = ("CarRacing: play gymnasium's game (same physics, rewards, endings) with frames drawn by a "
                 "renderer ~7x cheaper, within a tested bound of the official ones (wm.evaluate always "
                 "scores on the official env)")


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
    doom_skill: int | None = arg(None, DOOM_SKILL_HELP)
    fast_env: bool = arg(False, FAST_ENV_HELP + "; kept for the whole data set")
    seed: int = arg(0, "run seed; episode i is made from the seed sequence (seed, i)")
    log_every: float = arg(10.0, "seconds between progress lines")
    np: int = arg(0, "run on NP local processes that share the episodes: starts itself under this "
                  "environment's mpirun (0: this process alone, or the ranks of the mpirun that started it)")


# The fields whose values change what the files hold: a run directory keeps them fixed.
EXTRACT_DATA_FIELDS = ("env", "policy", "max_steps", "doom_skill", "fast_env", "seed")


# V's and M's --np (wm.stages.ddp.stage_main).
DATA_PARALLEL_NP_HELP = ("train on NP local processes, data-parallel: starts itself under this environment's "
                         "mpirun (0 or 1: this process alone, or the ranks of the mpirun that started it)")


@dataclass
class VAETrainConfig:
    """Train V (the ConvVAE) on the run's episode frames, streamed from RUN/record/."""

    run: str | None = arg(None, "run directory; reads RUN/record/, writes RUN/vae/", required=True)
    env: str | None = arg(None, "environment; default: the run's", choices=ENV_NAMES)
    preset: str = arg(DEFAULT_PRESET, "preset that sets the other fields", choices=PRESET_NAMES)
    epochs: int | None = arg(
        None, "passes over all frames; raise it to train on" + preset_note("vae", "epochs")
    )
    z_size: int | None = arg(None, "latent size" + preset_note("vae", "z_size"))
    episodes: int | None = arg(None, "train on the first N episodes only (0: all; M still uses all)"
                               + preset_note("vae", "episodes"))
    batch_size: int = arg(100, "frames per batch")
    lr: float = arg(1e-4, "Adam learning rate")
    kl_tolerance: float = arg(0.5, "KL floor per latent dimension, in nats")
    shuffle_episodes: int = arg(16, "episodes held in memory at once; frames are shuffled across them")
    device: str = arg("auto", "auto (a GPU if present), cpu or cuda", choices=["auto", "cpu", "cuda"])
    threads: int = arg(0, "CPU threads for torch (0: all cores)")
    seed: int = arg(0, "seed of the weights' initialisation and of the data order")
    log_every: float = arg(10.0, "seconds between progress lines")
    fresh: bool = arg(False, "start over: move this run's earlier V outputs to RUN/vae/previous-*/")
    np: int = arg(0, DATA_PARALLEL_NP_HELP)


# Changing these mid-training would mix two different trainings: --fresh starts over instead.
VAE_FIXED_FIELDS = ("env", "z_size", "episodes", "batch_size", "lr", "kl_tolerance", "seed")


@dataclass
class RNNTrainConfig:
    """Train M (the MDN-RNN) on RUN/series/: predict the next latent (and, for Doom, death)."""

    run: str | None = arg(None, "run directory; reads RUN/series/, writes RUN/rnn/", required=True)
    env: str | None = arg(None, "environment; default: the run's", choices=ENV_NAMES)
    preset: str = arg(DEFAULT_PRESET, "preset that sets the other fields", choices=PRESET_NAMES)
    epochs: int | None = arg(
        None, "Doom: passes over all episodes; CarRacing: blocks of --steps-per-epoch batches"
        + preset_note("rnn", "epochs"),
    )
    steps_per_epoch: int = arg(100, "CarRacing only: random-window batches per epoch")
    seq_len: int | None = arg(None, "time steps per training sequence" + preset_note("rnn", "seq_len"))
    batch_size: int = arg(100, "sequences per batch (Doom: parallel streams of episodes)")
    hidden_size: int | None = arg(None, "LSTM units" + preset_note("rnn", "hidden_size"))
    num_mixtures: int = arg(5, "Gaussians per latent dimension")
    lr: float = arg(1e-3, "Adam learning rate")
    lr_decay: float | None = arg(None, "learning rate x this every step" + preset_note("rnn", "lr_decay"))
    lr_min: float | None = arg(None, "floor of the decayed learning rate" + preset_note("rnn", "lr_min"))
    grad_clip: float = arg(1.0, "clip every gradient entry to +-this (0: no clipping)")
    done_weight: float = arg(10.0, "Doom: weight of the positive (death) steps in the done loss")
    device: str = arg("auto", "auto (a GPU if present), cpu or cuda", choices=["auto", "cpu", "cuda"])
    threads: int = arg(0, "CPU threads for torch (0: all cores)")
    seed: int = arg(0, "seed of the weights' initialisation, the data order and the z samples")
    log_every: float = arg(10.0, "seconds between progress lines")
    fresh: bool = arg(False, "start over: move this run's earlier M outputs to RUN/rnn/previous-*/")
    round_weight: int = arg(4, "iterative training: each epoch holds every round's episodes (played by "
                            "trained controllers) this many times, the random data once")
    grown_data: bool = arg(False, "iterative training: continue M's checkpoint although the data set grew "
                           "(new rounds) or --round-weight changed since it (without it, that is refused)")
    np: int = arg(0, DATA_PARALLEL_NP_HELP)


RNN_FIXED_FIELDS = ("env", "hidden_size", "num_mixtures", "seq_len", "batch_size", "lr", "lr_decay",
                    "lr_min", "grad_clip", "done_weight", "seed", "steps_per_epoch")


@dataclass
class TrainConfig:
    """Train C with an evolution strategy over MPI: rank 0 runs the strategy, the others play."""

    run: str | None = arg(None, "run directory; reads RUN/vae/vae.pt and RUN/rnn/rnn.pt, writes RUN/es/",
                          required=True)
    env: str | None = arg(None, "environment; default: the run's", choices=ENV_NAMES)
    preset: str = arg(DEFAULT_PRESET, "preset that sets the other fields", choices=PRESET_NAMES)
    optimizer: str = arg("cma", "evolution strategy (pepg/openes: ClipUp on the mean; es/pepg.py says how "
                         "to get estool's Adam)", choices=["cma", "pepg", "openes", "snes", "ga"])
    generations: int | None = arg(None, "generations to run in all; raise it to continue a run"
                           + preset_note("train", "generations"))
    popsize: int | None = arg(None, "candidates per generation" + preset_note("train", "popsize"))
    num_episode: int | None = arg(None, "episodes per candidate; fitness is their mean return"
                           + preset_note("train", "num_episode"))
    eval_every: int | None = arg(None, "evaluate the mean every so many generations (0: never)"
                          + preset_note("train", "eval_every"))
    eval_episodes: int | None = arg(None, "episodes of each evaluation, with fresh seeds"
                             + preset_note("train", "eval_episodes"))
    sigma_init: float = arg(0.1, "initial step size of the strategy")
    shared_seeds: bool = arg(False, "every candidate of a generation plays the same episode seeds (common "
                             "random numbers: candidates are ranked on the same tracks), instead of the "
                             "original's seeds shared by antithetic pairs only; part of the checkpoint's "
                             "settings")
    max_steps: int = arg(0, "cap on steps per episode (0: the env's own, 1000 / 2100)")
    seed: int = arg(0, "seed of the strategy and of every episode's seed")
    envs_per_worker: int = arg(1, "envs each worker steps in lockstep so V and M run batched (faster; "
                               "above 1, returns depend slightly on which episodes share a batch)")
    off_track_stop: int = arg(
        0, "CarRacing: end a training episode after this many steps in a row without a new track tile, "
        "scoring -0.1 for each step left as if the car never came back (saves time; 0: off"
        + preset_note("train", "off_track_stop").replace(" (", "; ", 1))
    fast_env: bool = arg(False, FAST_ENV_HELP + "; part of the checkpoint's settings")
    force: bool = arg(False, "continue a checkpoint even if it was made with other settings")
    dream: bool = arg(False, "train inside M's dream of Doom TakeCover instead of the real game (the "
                      "Doom presets do)")
    out: str = arg("es", "directory under RUN for the ES outputs (e.g. a temperature sweep's)")
    temperature: float = arg(1.15, "--dream: temperature tau of M's sampling (the paper's best: 1.15)")
    dream_batch: int = arg(256, "--dream: dream episodes each worker steps together in one batch")
    init_params: str = arg("", "start the strategy's mean from this controller (a JSON file with 'params', "
                           "e.g. the previous round's best.json in iterative training) instead of zeros")
    np: int = arg(0, "play on NP local worker processes: starts itself under this environment's mpirun "
                  "with NP + 1 ranks, rank 0 coordinating (0: this process alone, or the ranks of the mpirun "
                  "that started it)")


@dataclass
class SeriesConfig:
    """Encode every frame of RUN/record/ with the trained V into RUN/series/ (mu, logvar per frame)."""

    run: str | None = arg(None, "run directory; reads RUN/record/ and RUN/vae/vae.pt", required=True)
    batch_size: int = arg(1000, "frames encoded at once")
    device: str = arg("auto", "auto (a GPU if present), cpu or cuda", choices=["auto", "cpu", "cuda"])
    threads: int = arg(0, "CPU threads for torch (0: all cores)")
    log_every: float = arg(10.0, "seconds between progress lines")
    np: int = arg(0, "encode on NP local processes that share the episodes: starts itself under "
                  "this environment's mpirun (0 or 1: this process alone, or the ranks of the mpirun "
                  "that started it)")


def preset_values(stage: str, env: str, preset: str) -> dict[str, Any]:
    """The preset's fields for one stage (empty when the preset sets none)."""
    return dict(PRESETS[env][preset].get(stage, {}))


def resolve_defaults(stage: str, cls: type, typed: dict[str, Any]) -> dict[str, Any]:
    """Values for the fields the user did not type: the stage's saved settings in this run when it
    ran before (so re-running continues it), else the preset's (``--preset`` asks for the preset)."""
    env = typed.get("env") or run_env(typed["run"]) or DEFAULT_ENV
    saved = stage_config(typed["run"], stage)
    if saved and saved.get("env") == env and "preset" not in typed and not typed.get("fresh"):
        # (one-time decisions are never carried over: --grown-data is asked for each time)
        names = {f.name for f in dataclasses.fields(cls)} - {"run", "fresh", "force", "grown_data", "np"}
        return {k: v for k, v in saved.items() if k in names}
    preset = typed.get("preset") or DEFAULT_PRESET
    return {"env": env, "preset": preset, **preset_values(stage, env, preset)}


def parse_stage_config(stage: str, cls: type[T], argv: list[str] | None, prog: str, doc: str | None,
                       validate: Callable[[T], None]) -> T:
    """A stage's config from its command line, over the run's saved settings or the preset."""
    cfg, _ = cli.parse(cls, argv, prog, doc or "", lambda typed: resolve_defaults(stage, cls, typed))
    validate(cfg)
    return cfg


def as_dict(config: Any) -> dict[str, Any]:
    """A stage config as plain JSON-able values."""
    return dataclasses.asdict(config)


@dataclass
class EvaluateConfig:
    """Score a controller over many episodes with fresh seeds, in the real env (or M's dream)."""

    run: str | None = arg(None, "run directory; reads RUN/vae, RUN/rnn and RUN/es, writes RUN/eval/",
                          required=True)
    params: str = arg("best", "controller: best (the run's: RUN/es/best.json, or after iterative training "
                      "the newest round's RUN/es-round-R/best.json), current (RUN/es/'s checkpoint's mean), "
                      "random (the run's random data policy: the baseline), or a JSON file with 'params'")
    episodes: int = arg(100, "episodes to play")
    seed: int = arg(0, "evaluation seed: episode i plays the env seed made from (seed, i), a stream "
                    "apart from every seed training uses")
    seeds: str = arg("", "comma-separated env seeds to play instead (overrides --episodes and --seed)")
    dream: bool = arg(False, "play in M's dream (Doom) instead of the real game")
    temperature: float = arg(1.15, "--dream: temperature tau of M's sampling")
    max_steps: int = arg(0, "cap on steps per episode (0: the env's own, 1000 / 2100)")
    doom_skill: int | None = arg(None, "Doom: play at this ViZDoom skill (1 to 5) instead of the run's "
                                 "own (wm.extract --doom-skill), to compare; the outputs' name then "
                                 "ends in -skill<N>")
    envs_per_worker: int = arg(1, "real env: envs each worker steps in lockstep (V and M batched)")
    fast_env: bool = arg(False, "CarRacing: play the fast env (wm.envs.fast_carracing: the same game drawn "
                         "by our renderer) instead of gymnasium's, to compare a controller on both over the "
                         "same tracks; the score to quote is the official one. The outputs' name ends in "
                         "-fast")
    np: int = arg(0, "play on NP local worker processes: starts itself under this environment's mpirun "
                  "with NP + 1 ranks (0: this process alone, or the ranks of the mpirun that started it)")
    name: str | None = arg(None, "name of the outputs RUN/eval/NAME.json and .csv (default: real, random or "
                    "dream-tau<T>, with the controller's name unless it is best)")


@dataclass
class PlayConfig:
    """Iterative training: play real episodes with a trained controller, explored, into a round of the
    data set (RUN/record/round-RR/)."""

    run: str | None = arg(None, "run directory; reads RUN/vae, RUN/rnn, writes RUN/record/round-RR/",
                          required=True)
    round: int = arg(1, "round of iterative training (1, 2, ...): names the episodes' directory")
    params: str | None = arg(None, "controller: a JSON file with 'params' (the previous round's best.json)",
                             required=True)
    episodes: int = arg(100, "real episodes to play")
    sigma: float = arg(0.1, "exploration: each episode plays the controller's parameters plus Gaussian "
                       "noise of this standard deviation, drawn from (seed, round, episode); 0: none")
    seed: int = arg(0, "run seed; episode i of round r plays the env seed and noise of (seed, 4, r, i)")
    log_every: float = arg(10.0, "seconds between progress lines")
    np: int = arg(0, "play on NP local processes that share the episodes: starts itself under this "
                  "environment's mpirun (0: this process alone, or the ranks of the mpirun that started it)")
