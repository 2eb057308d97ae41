# Sourced by the launch scripts: wm_mpirun NP COMMAND... runs COMMAND on NP ranks with the
# environment's mpirun, adding what Open MPI needs on a workstation (more ranks than cores, root).
#   WM_MPIRUN   the mpirun to use (default: the one beside python, else PATH's)
wm_mpirun() {
  local np="$1"; shift
  # One thread per rank for every numerical library (set before Python starts, as OpenBLAS reads
  # it once): many ranks share the cores. Open MPI's mpirun passes the environment to its ranks.
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" \
         MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
  local words
  words="$(python -m es.launch "$np" "${WM_MPIRUN:-}")" || return 1
  local cmd
  mapfile -t cmd <<<"$words"
  "${cmd[@]}" "$@"
}
