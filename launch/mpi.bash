# Sourced by the launch scripts: wm_mpirun NP COMMAND... runs COMMAND on NP ranks with the
# environment's mpirun, adding what Open MPI needs on a workstation (more ranks than cores, root).
#   WM_MPIRUN   the mpirun to use (default: the one beside python, else PATH's)
wm_mpirun() {
  local np="$1"; shift
  local words
  words="$(python -m es.mpi "$np" "${WM_MPIRUN:-}")" || return 1
  local cmd
  mapfile -t cmd <<<"$words"
  "${cmd[@]}" "$@"
}
