#!/usr/bin/env bash
# The main job on a built-in default: sets up .venv if needed, then runs the pipeline so far on the
# quick Doom TakeCover preset: extraction over MPI on the local cores, then V, the series and M.
#   RUN   run directory (default runs/quickstart); re-running continues it
#   NP    MPI ranks for extraction (default: the number of cores)
# Extra arguments go to the extraction (e.g. --episodes 8).
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/venv.bash
source launch/mpi.bash
RUN="${RUN:-runs/quickstart}"
NP="${NP:-$(nproc)}"
echo "[quickstart] doom, preset quick, $NP MPI ranks, run directory $RUN"
wm_mpirun "$NP" python -m wm.extract --run "$RUN" --env doom --preset quick "$@"
python -m wm.vae_train --run "$RUN" --preset quick
python -m wm.series --run "$RUN"
python -m wm.rnn_train --run "$RUN" --preset quick
echo "[quickstart] done: V reconstructions in $RUN/vae/reconstructions/, losses in $RUN/*/metrics.csv"
