"""`python -m wm.evaluate`: the command; its code is wm/stages/evaluate.py."""

import sys

from wm.stages.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
