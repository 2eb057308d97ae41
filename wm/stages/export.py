"""Pack a trained agent into a small directory that every command takes as a run: V and M in
float16, the best controller, the recorded first latents (for dreams) and the run's config.

    python -m wm.export --run runs/doom-small --out agents/doom-small [--force]

Then e.g. ``python -m wm.evaluate --run agents/doom-small`` or ``python -m wm.render --run
agents/doom-small``. float16 halves the files (the models compute in float32 once loaded; the scores
of both are in RESULTS.md). The agent is written beside --out and renamed into place when complete;
an existing --out is refused, unless --force is given and it holds an earlier export. --out is
never the run itself, a folder inside it, or one that holds it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from wm.core.errors import WMError
from wm.data.files import temp_name, write_json
from wm.data.rundir import final_controller
from wm.models.training import load_weights, save_torch_file
from wm.models.weights import rnn_path, vae_path, weights_digest, world_model_digests

AGENT_NAME = "agent.json"
COPIED = ("es/best.json", "series/initial_z.npz", "config.json")


def check_out(run: Path, out: Path, force: bool) -> None:
    """Refuse an ``out`` that would overwrite the source run (its float32 weights are what every
    later stage and export needs), and an existing folder unless ``force`` replaces an earlier
    export (never an arbitrary folder: a typo would delete it)."""
    source, target = run.resolve(), out.resolve()
    if target == source or source in target.parents or target in source.parents:
        raise WMError(f"--out {out} is the run {run}, lies inside it or holds it: export to a directory "
                      "outside the run")
    if not target.exists():
        return
    if not target.is_dir():
        raise WMError(f"--out {out} exists and is not a directory")
    if not any(target.iterdir()):
        return
    if not force:
        raise WMError(f"--out {out} already exists: choose another directory, or pass --force to replace "
                      "an earlier export there")
    if not (target / AGENT_NAME).is_file():
        raise WMError(f"--out {out} holds files but no exported agent ({AGENT_NAME}): --force replaces only "
                      "an earlier export; choose another directory")


def _float16(data: dict[str, Any], run: Path) -> dict[str, Any]:
    """A weights file's contents with its floating-point tensors in float16, saying where it comes from."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in data["state_dict"].items()}
    return {**data, "state_dict": state,
            "info": {**data["info"], "exported_from": str(run), "dtype": "float16"}}


def _write_agent(run: Path, out: Path) -> list[Path]:
    """Write the agent's files into the new directory ``out``; returns them."""
    vae = _float16(load_weights(vae_path(run), "vae"), run)
    rnn = _float16(load_weights(rnn_path(run), "rnn"), run)
    # M names the V it fits: now the float16 V beside it (the float32 one it was trained on stays in
    # the run), so every stage can still check the pair.
    rnn["info"].update(vae=weights_digest(vae), source_vae=rnn["info"].get("vae"))
    written = []
    for source, data in ((vae_path(run), vae), (rnn_path(run), rnn)):
        target = out / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        save_torch_file(target, data)
        written.append(target)
    for name in COPIED:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        # (the run's controller: after iterative training the newest round's, which fits its M)
        shutil.copyfile(final_controller(run) if name == "es/best.json" else run / name, out / name)
        written.append(out / name)
    write_json(out / AGENT_NAME, {"exported_from": str(run), "dtype": "float16",
                                  "files": [str(p.relative_to(out)) for p in written]})
    return written


def _move_into_place(staged: Path, target: Path) -> None:
    """Rename the complete agent to ``target``; an earlier one there is removed only after that."""
    if not target.exists():
        staged.rename(target)
        return
    old = temp_name(target)
    target.rename(old)
    try:
        staged.rename(target)
    except OSError:
        old.rename(target)
        raise
    shutil.rmtree(old)


def export(run: Path, out: Path, force: bool = False) -> list[Path]:
    """Write the agent to ``out`` (checked first: see :func:`check_out`); returns its files."""
    check_out(run, out, force)
    needed = [vae_path(run), rnn_path(run), *(run / name for name in COPIED)]
    missing = [p for p in needed if not p.is_file()]
    if missing:
        raise WMError(f"{missing[0]} is missing: finish the run first (launch/doom.bash)")
    world_model_digests(run)  # (refuses an M trained on another V)
    target = out.resolve()
    staged = temp_name(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.mkdir()
        written = _write_agent(run, staged)
        _move_into_place(staged, target)
    except OSError as err:
        raise WMError(f"--out {out}: cannot write the agent ({err.strerror or err})") from err
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return [target / p.relative_to(staged) for p in written]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wm.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="the trained run")
    parser.add_argument("--out", required=True, help="directory to write the agent to (outside the run)")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier export in --out (never the run, nor other files)")
    args = parser.parse_args(argv)
    try:
        written = export(Path(args.run), Path(args.out), args.force)
    except WMError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in written) / 2**20
    print(f"[export] {len(written)} files, {size:.1f} MiB in {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
