"""`python -m wm.play`: the command; its code is wm/stages/play.py."""

import sys

from wm.stages.play import main

if __name__ == "__main__":
    sys.exit(main())
