#!/usr/bin/env bash
# Like the original's gce_train.bash: ES training of C over all local cores with mpirun (rank 0
# coordinates, the other ranks play episodes).
#   bash gce_train.bash --run runs/doom --optimizer cma --generations 100
# NP sets the number of ranks (default: cores + 1, since rank 0 mostly waits).
set -euo pipefail
cd "$(dirname "$0")"
source launch/venv.bash
source launch/mpi.bash
wm_mpirun "${NP:-$(( $(nproc) + 1 ))}" python -m wm.train "$@"
