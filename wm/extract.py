"""`python -m wm.extract`: the command; its code is wm/stages/extract.py."""

import sys

from wm.stages.extract import main

if __name__ == "__main__":
    sys.exit(main())
