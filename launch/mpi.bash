# Sourced by the launch scripts: wm_mpirun NP COMMAND... runs COMMAND on NP ranks with the
# environment's mpirun, adding what Open MPI needs on a workstation (more ranks than cores, root).
#   WM_MPIRUN   the mpirun to use (default: the one beside python, else PATH's)
wm_mpirun() {
  local np="$1"; shift
  local cmd
  mapfile -t cmd < <(python -c "import sys; from es.mpi import mpirun_command; print('\n'.join(mpirun_command(int(sys.argv[1]), sys.argv[2] or None)))" "$np" "${WM_MPIRUN:-}") || return 1
  "${cmd[@]}" "$@"
}
