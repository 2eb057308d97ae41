"""`python -m wm.export`: the command; its code is wm/stages/export.py."""

import sys

from wm.stages.export import main

if __name__ == "__main__":
    sys.exit(main())
