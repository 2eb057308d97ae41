"""Stage 3: encode every frame of RUN/record/ with the trained V into RUN/series/.

    python -m wm.series --run runs/doom

One file per episode, ``series/episode_NNNNNN.npz``: ``mu`` and ``logvar`` (float32 (T, z)) with the
episode's ``action``, ``reward``, ``terminated`` and ``truncated``, and ``meta`` naming the V that
encoded it (a hash of vae.pt); the episodes of iterative training's rounds (RUN/record/round-RR/)
go to ``series/round-RR/``. Also ``series/initial_z.npz``: the first frame's mu and logvar of every
episode of the data set (rounds included: every real episode starts where the game does), from which
dreams start. One episode is in memory at a time; re-running keeps episodes
already encoded by the same V and (re)does the rest, so a new V means a fresh series.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wm.core import cli
from wm.core.config import SeriesConfig
from wm.core.errors import WMError
from wm.core.progress import Progress
from wm.data.files import atomic_write, remove_stale_temps, write_json
from wm.data.record import read_episode
from wm.data.recordset import RECORD_DIR, DataEpisode, data_set
from wm.data.rundir import first_missing, locked, make_stage_dir, stage_config
from wm.models.vae import ConvVAE, to_tensor
from wm.models.weights import load_vae, vae_digest, vae_path
from wm.stages import ddp

SERIES_DIR = "series"
FORMAT_VERSION = 1
KEYS = ("mu", "logvar", "action", "reward", "terminated", "truncated", "meta")


def series_path(run: str | Path, index: int) -> Path:
    """Where episode ``index``'s series lives."""
    return Path(run) / SERIES_DIR / f"episode_{index:06d}.npz"


def series_file(run: str | Path, episode: DataEpisode) -> Path:
    """Where a data-set episode's series lives: its path under RUN/record/, under RUN/series/."""
    return Path(run) / SERIES_DIR / episode.path.relative_to(Path(run) / RECORD_DIR)


def read_series(path: Path, vae_digest: str | None = None) -> dict[str, Any]:
    """One episode's series arrays, checked; ``vae_digest`` if given must match the encoding V."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in KEYS}
        meta = json.loads(str(arrays.pop("meta")))
    except Exception as err:
        raise WMError(f"{path}: not a readable series file ({type(err).__name__}: {err})") from err
    if meta.get("format_version") != FORMAT_VERSION:
        raise WMError(f"{path}: series format {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    if vae_digest is not None and meta.get("vae") != vae_digest:
        raise WMError(
            f"{path}: encoded by another V ({meta.get('vae')}) than {vae_path(path.parents[1])} "
            f"({vae_digest}): re-run `python -m wm.series --run {path.parents[1]}`"
        )
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1 or not np.all(np.isfinite(arrays["mu"])):
        raise WMError(f"{path}: damaged series file (unequal lengths or non-finite latents)")
    return {**arrays, "meta": meta}


@torch.no_grad()
def encode(
    model: ConvVAE, frames: np.ndarray, batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) float32 (T, z) of uint8 frames (T, 64, 64, 3), ``batch_size`` frames at a time."""
    mus, logvars = [], []
    for start in range(0, len(frames), batch_size):
        mu, logvar = model.encode(to_tensor(frames[start : start + batch_size], device))
        mus.append(mu.cpu().numpy())
        logvars.append(logvar.cpu().numpy())
    return np.concatenate(mus).astype(np.float32), np.concatenate(logvars).astype(np.float32)


def _is_current(path: Path, digest: str) -> bool:
    try:
        read_series(path, digest)
        return True
    except WMError:
        return False


def make_series(cfg: SeriesConfig, ranks: ddp.Ranks | None = None) -> dict[str, Any]:
    """Encode every episode not yet encoded by the current V; returns a summary. With ``ranks`` of
    more than one, rank r encodes episodes r, r + P, ... of those to do (the same files)."""
    ranks = ranks or ddp.Ranks()
    device = ranks.device(cfg.device, cfg.threads)
    episodes = data_set(cfg.run)
    files = [series_file(cfg.run, e) for e in episodes]
    model, digest = load_vae(cfg.run, device)
    out = ranks.on_writer(lambda: make_stage_dir(cfg.run, SERIES_DIR))
    start = time.monotonic()
    with ranks.writer_lock(lambda: locked(out)):
        ranks.on_writer(lambda: remove_stale_temps(out))
        share = range(ranks.rank, len(files), ranks.size)  # (each rank checks its share of the files)
        stale = [i for i in share if not _is_current(files[i], digest)]
        todo = sorted(i for found in ranks.allgather(stale) for i in found) if ranks.active else stale
        on = f" on {ranks.size} ranks" if ranks.active else ""
        ranks.say(f"[series] V {digest}: {len(files) - len(todo)} episodes already encoded, "
                  f"{len(todo)} to encode{on}")
        mine = todo[ranks.rank :: ranks.size]
        progress = Progress("series", len(mine), "episodes", "frames",
                            every=cfg.log_every if ranks.is_writer else math.inf)
        for i in mine:
            ep = read_episode(episodes[i].path)
            mu, logvar = encode(model, ep.obs, cfg.batch_size, device)
            arrays = {"mu": mu, "logvar": logvar, "action": ep.action, "reward": ep.reward,
                      "terminated": ep.terminated, "truncated": ep.truncated,
                      "meta": np.array(json.dumps({"format_version": FORMAT_VERSION, "vae": digest,
                                                   "index": ep.meta.get("index", i),
                                                   "round": episodes[i].round, "env": ep.meta.get("env")}))}
            files[i].parent.mkdir(exist_ok=True)  # (series/round-RR/)
            atomic_write(files[i], lambda f, a=arrays: np.savez(f, **a))
            progress.update(done=1, count=len(ep))
        encoded = sum(ranks.allgather(progress.count)) if ranks.active else progress.count
        if not ranks.is_writer:
            return {"encoded": len(mine), "frames": progress.count}
        initial_mu, initial_logvar, lengths = [], [], []
        for path in files:
            series = read_series(path, digest)
            initial_mu.append(series["mu"][0])
            initial_logvar.append(series["logvar"][0])
            lengths.append(len(series["mu"]))
        atomic_write(out / "initial_z.npz", lambda f: np.savez(
            f, mu=np.stack(initial_mu), logvar=np.stack(initial_logvar)))
        seconds = time.monotonic() - start
        rounds = sorted({e.round for e in episodes} - {0})
        summary = {"episodes": len(files), "rounds": rounds, "encoded": len(todo),
                   "frames": int(sum(lengths)), "vae": digest, "z_size": int(initial_mu[0].shape[0]),
                   "seconds": round(seconds, 3),
                   "frames_per_s": round(encoded / max(seconds, 1e-9), 1)}
        write_json(out / "summary.json", summary)
    print(f"[series] done: {out} holds {len(files)} episodes (rounds: {rounds or 'none'}), "
          f"{summary['frames']:,} frames, z {summary['z_size']}; encoded {encoded:,} frames at "
          f"{summary['frames_per_s']:,.0f}/s; initial latents in {out / 'initial_z.npz'}", flush=True)
    return summary


def load_series(run: str | Path) -> list[dict[str, Any]]:
    """Every data-set episode's series (rounds included, each with its "round": 0 for extraction's),
    checked against the run's current V (for M training)."""
    saved = stage_config(run, "extract")
    if not saved or not (Path(run) / SERIES_DIR / "summary.json").is_file():
        raise WMError(f"no series in {Path(run) / SERIES_DIR}: {first_missing(run)}")
    digest = vae_digest(run)  # (one clear error when there is no V)
    episodes = data_set(run)
    missing = [e for e in episodes if not series_file(run, e).is_file()]
    if missing:
        raise WMError(f"{len(missing)} episodes of the data set are not encoded yet (first: "
                      f"{missing[0].path}): run `python -m wm.series --run {run}`")
    return [{**read_series(series_file(run, e), digest), "round": e.round} for e in episodes]


def validate_config(cfg: SeriesConfig) -> None:
    """One clear error for values no run can use."""
    if cfg.batch_size < 1:
        raise WMError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    if cfg.threads < 0:
        raise WMError(f"--threads must be >= 0, got {cfg.threads}")
    if not math.isfinite(cfg.log_every) or cfg.log_every < 0:
        raise WMError(f"--log-every must be >= 0, got {cfg.log_every}")


def parse_config(argv: list[str] | None) -> SeriesConfig:
    cfg, _ = cli.parse(SeriesConfig, argv, "python -m wm.series", __doc__)
    validate_config(cfg)
    return cfg


def main(argv: list[str] | None = None) -> int:
    return ddp.stage_main("wm.series", "series", argv, parse_config, make_series)


if __name__ == "__main__":
    sys.exit(main())
