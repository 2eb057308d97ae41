#!/usr/bin/env bash
# The main job on a built-in default: sets up .venv if needed, then runs the whole Doom TakeCover
# experiment on the quick preset (within 10 minutes on 2 cores, no GPU): extraction over MPI on the
# local cores, V, the series, M, C trained by CMA-ES over MPI (in the real game on V's and M's
# features: 10 minutes of data make no dream worth training in), then the real-game score over 100
# episodes beside the random policy's, in RUN/results.md. The dream-trained experiment:
# `bash launch/doom.bash --preset small --run runs/doom-small` (108 min on 2 cores, no GPU).
#   RUN   run directory (default runs/quickstart); re-running continues it
#   NP    MPI ranks for extraction (default: the number of cores; training uses NP + 1)
#   PRESET  another preset (default quick)
# Extra arguments go to `python -m wm.pipeline`.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${RUN:-runs/quickstart}"
NP="${NP:-0}"
exec bash launch/doom.bash --preset "${PRESET:-quick}" --run "$RUN" --np "$NP" "$@"
