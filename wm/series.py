"""`python -m wm.series`: the command; its code is wm/stages/series.py."""

import sys

from wm.stages.series import main

if __name__ == "__main__":
    sys.exit(main())
