#!/usr/bin/env bash
# The Doom TakeCover experiment of the paper, end to end: random-policy episodes -> V -> series ->
# M -> C trained by CMA-ES in M's dream over MPI (the quick preset: in the game) -> scored in the
# real game over 100 fresh episodes beside the random policy -> RUN/results.md. Sets up .venv if
# needed. Each stage is skipped when its outputs are complete: run the same command again to continue
# after a stop.
#   bash launch/doom.bash --preset small --run runs/doom-small     (108 min on 2 cores, no GPU, 3 rounds)
#   bash launch/doom.bash --preset quick --run runs/doom-quick     (within 10 minutes; C trained in the game)
# Flags go to `python -m wm.pipeline` (--np N: MPI ranks, default the cores; --eval-episodes N;
# --rounds R: R rounds of iterative training after the first controller, see wm/orchestration/rounds.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/venv.bash
python -m wm.pipeline --env doom "$@"
