"""`python -m wm.sweep`: the command; its code is wm/orchestration/sweep.py."""

import sys

from wm.orchestration.sweep import main

if __name__ == "__main__":
    sys.exit(main())
