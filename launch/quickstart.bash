#!/usr/bin/env bash
# The main job on a built-in default: sets up .venv if needed, then runs the quick Doom TakeCover
# preset over MPI on the local cores. RUN (default runs/quickstart) is the run directory.
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/venv.bash
source launch/mpi.bash
RUN="${RUN:-runs/quickstart}"
NP="${NP:-$(nproc)}"
echo "[quickstart] doom, preset quick, $NP MPI ranks, run directory $RUN"
wm_mpirun "$NP" python -m wm.extract --run "$RUN" --env doom --preset quick "$@"
