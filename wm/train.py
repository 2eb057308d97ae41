"""`python -m wm.train`: the command; its code is wm/stages/train.py."""

import sys

from wm.stages.train import main

if __name__ == "__main__":
    sys.exit(main())
