#!/usr/bin/env bash
# The CarRacing experiment of the paper, end to end: random (brownian) driving -> V -> series -> M ->
# C trained by CMA-ES in the real env over MPI -> scored over 100 fresh tracks beside the random
# policy -> RUN/results.md and RUN/report.md. Sets up .venv if needed. Each stage is skipped when its
# outputs are complete: run the same command again to continue after a stop.
#   bash launch/carracing.bash --preset small --run runs/carracing-small
#   bash launch/carracing.bash --preset quick --run runs/carracing-quick     (minutes; a smoke test)
# Flags go to `python -m wm.pipeline` (--np N: MPI ranks, default the cores; --eval-episodes N).
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/venv.bash
python -m wm.pipeline --env carracing "$@"
