"""`python -m wm.results`: the command; its code is wm/pictures/results.py."""

import sys

from wm.pictures.results import main

if __name__ == "__main__":
    sys.exit(main())
