# Sourced by the batch templates in this directory: enter the project, activate its environment and
# define wm_launcher, the words that start the job's MPI ranks. Nothing here is site-specific.
#   WM_ROOT      the project checkout (wm.submit sets it; default: the directory sbatch ran in)
#   WM_VENV      its virtual environment (default: WM_ROOT/.venv); it and the run directory must be
#                on a file system every node of the job sees
#   WM_LAUNCHER  mpirun (default): the MPI's own launcher, which reads the allocation from Slurm and
#                works with any MPI and any Slurm; or srun (needs Slurm's PMI plugin for your MPI)
#   WM_SRUN_MPI  srun's --mpi plugin when WM_LAUNCHER=srun (default: pmix; MPICH: pmi2)
#   WM_MPIRUN    the mpirun to use (default: the one beside the environment's python, else PATH's)
set -euo pipefail
WM_ROOT="${WM_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}"
cd "$WM_ROOT"
_wm_venv="${WM_VENV:-$WM_ROOT/.venv}"
if [[ ! -f "$_wm_venv/bin/activate" ]]; then
  # A compute node may have no network: the environment is built once, on the login node.
  echo "error: no virtual environment at $_wm_venv: run 'bash launch/venv.bash' on the login node first" >&2
  exit 2
fi
# shellcheck disable=SC1091
source "$_wm_venv/bin/activate"
export SDL_VIDEODRIVER="${SDL_VIDEODRIVER:-dummy}"
# One thread per rank for every numerical library: the ranks share the cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" \
       MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
echo "[slurm] job ${SLURM_JOB_ID:-?} (${SLURM_JOB_NAME:-?}) on ${SLURM_JOB_NODELIST:-?}: ${SLURM_NTASKS:-1}" \
     "task(s), start $(( ${SLURM_RESTART_COUNT:-0} + 1 )), $(date '+%F %T')"

# wm_launcher: prints, one per line, the words that run a command on all of the job's tasks.
wm_launcher() {
  case "${WM_LAUNCHER:-mpirun}" in
    mpirun) python -m es.launch "${SLURM_NTASKS:-1}" "${WM_MPIRUN:-}" ;;
    srun) printf '%s\n' srun --kill-on-bad-exit=1 "--mpi=${WM_SRUN_MPI:-pmix}" ;;
    *) echo "error: WM_LAUNCHER must be mpirun or srun, got '$WM_LAUNCHER'" >&2; return 2 ;;
  esac
}

# wm_ranks COMMAND...: run COMMAND on all tasks and return its status.
wm_ranks() {
  local words launch
  words="$(wm_launcher)" || return 2
  mapfile -t launch <<<"$words"
  "${launch[@]}" "$@"
}

# wm_model_stage MODULE ARGS...: V, the series or M. On several tasks (a job without a GPU that
# wm.submit gave --ntasks), data-parallel over them; on one task, one process on the job's GPU if it
# has one, else on its --cpus-per-task threads.
wm_model_stage() {
  if [[ "${SLURM_NTASKS:-1}" -gt 1 ]]; then
    wm_ranks python -m "$@"
  else
    OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-$OMP_NUM_THREADS}" python -m "$@"
  fi
}
