#!/usr/bin/env bash
# The main job on a built-in default: sets up .venv if needed, then runs the pipeline so far on the
# quick Doom TakeCover preset: extraction over MPI on the local cores, V, the series, M, then C
# trained by CMA-ES over MPI in the real game (a few generations: a smoke test, not a good agent).
#   RUN          run directory (default runs/quickstart); re-running continues it
#   NP           MPI ranks for extraction (default: the number of cores; training uses NP + 1)
#   TRAIN_ARGS   extra flags for the training stage (e.g. "--max-steps 100")
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
# shellcheck disable=SC2086
wm_mpirun "$((NP + 1))" python -m wm.train --run "$RUN" --preset quick ${TRAIN_ARGS:-}
echo "[quickstart] done: V reconstructions in $RUN/vae/reconstructions/, losses in $RUN/*/metrics.csv,"
echo "[quickstart] ES history in $RUN/es/history.csv, best controller in $RUN/es/best.json"
