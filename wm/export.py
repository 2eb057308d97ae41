"""Pack a trained agent into a small directory that every command takes as a run: V and M in
float16, the best controller, the recorded first latents (for dreams) and the run's config.

    python -m wm.export --run runs/doom-small --out agents/doom-small

Then e.g. ``python -m wm.evaluate --run agents/doom-small`` or ``python -m wm.render --run
agents/doom-small``. float16 halves the files (the models compute in float32 once loaded; the scores
of both are in RESULTS.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from wm.errors import WMError
from wm.files import write_json
from wm.models import rnn_path, vae_path
from wm.training import load_weights, save_torch_file


def export(run: Path, out: Path) -> list[Path]:
    """Write the agent's files under ``out``; returns them."""
    sources = {"vae": vae_path(run), "rnn": rnn_path(run)}
    copied = ("es/best.json", "series/initial_z.npz", "config.json")
    needed = [*sources.values(), *(run / name for name in copied)]
    missing = [p for p in needed if not p.is_file()]
    if missing:
        raise WMError(f"{missing[0]} is missing: finish the run first (launch/doom.bash)")
    written = []
    for kind, source in sources.items():
        data = load_weights(source, kind)
        state = data["state_dict"]
        data["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        data["info"] = {**data["info"], "exported_from": str(run), "dtype": "float16"}
        target = out / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        save_torch_file(target, data)
        written.append(target)
    for name in copied:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / name, out / name)
        written.append(out / name)
    write_json(out / "agent.json", {"exported_from": str(run), "dtype": "float16",
                                    "files": [str(p.relative_to(out)) for p in written]})
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wm.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="the trained run")
    parser.add_argument("--out", required=True, help="directory to write the agent to")
    args = parser.parse_args(argv)
    try:
        written = export(Path(args.run), Path(args.out))
    except WMError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in written) / 2**20
    print(f"[export] {len(written)} files, {size:.1f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
