#!/usr/bin/env bash
# Run one stage in the project's virtual environment, without activating it:
#   ./wm.sh STAGE [FLAGS...]     is   python -m wm.STAGE [FLAGS...]   inside the activated .venv
#   ./wm.sh evaluate --run agents/doom-small
#   ./wm.sh --help               lists the stages; ./wm.sh STAGE --help explains a stage's flags
# Sets up .venv first if needed (launch/venv.bash: WM_VENV, WM_PYTHON, WM_TORCH as there). Runs this
# checkout's code, from any directory: relative paths are the caller's.
set -euo pipefail
_wm_here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}" 2>/dev/null || echo "${BASH_SOURCE[0]}")")" && pwd)"

# The stages: the modules of wm/ that run with `python -m` (a main and a __main__ guard), found by
# reading the files, not by importing them (no environment needed to list them).
_wm_stages() {
  local file
  for file in "$_wm_here"/wm/*.py; do
    [[ "$(basename "$file")" == _* ]] && continue
    grep -q "^if __name__ == ['\"]__main__['\"]" "$file" && grep -qE "^def main\(|import .*\bmain\b" "$file" \
      && basename "$file" .py
  done
  for file in "$_wm_here"/wm/*/__main__.py; do  # a stage that is a package
    [[ -f "$file" ]] && basename "$(dirname "$file")"
  done
  return 0
}
mapfile -t _wm_all < <(_wm_stages | sort -u)

if [[ $# -eq 0 || "$1" == "--help" || "$1" == "-h" || "$1" == "help" ]]; then
  echo "usage: ./wm.sh STAGE [FLAGS...]   runs python -m wm.STAGE in the project's .venv (set up if needed)"
  echo "stages: ${_wm_all[*]}"
  echo "./wm.sh STAGE --help explains a stage's flags"
  exit 0
fi
_wm_stage="$1"
shift
_wm_found=0
for _wm_s in "${_wm_all[@]}"; do [[ "$_wm_s" == "$_wm_stage" ]] && _wm_found=1; done
if [[ $_wm_found -eq 0 ]]; then
  _wm_list="${_wm_all[*]}"
  echo "error: no stage '$_wm_stage'; stages: ${_wm_list// /, }" >&2
  exit 2
fi

# shellcheck disable=SC1091
source "$_wm_here/launch/venv.bash"
export PYTHONPATH="$_wm_here${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's wm/, whatever WM_VENV holds
exec python -m "wm.$_wm_stage" "$@"
