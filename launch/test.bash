#!/usr/bin/env bash
# Run the test suite (sets up .venv first if needed). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/venv.bash
python -m pytest -q -rs "$@"  # -rs: say why any test was skipped
