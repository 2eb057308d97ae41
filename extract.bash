#!/usr/bin/env bash
# Like the original's extract.bash: extraction over all local cores with mpirun.
#   bash extract.bash --run runs/doom --env doom --episodes 1000
# NP sets the number of ranks (default: the number of cores).
set -euo pipefail
cd "$(dirname "$0")"
source launch/venv.bash
source launch/mpi.bash
wm_mpirun "${NP:-$(nproc)}" python -m wm.extract "$@"
