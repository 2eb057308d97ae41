"""`python -m wm.report`: the command; its code is wm/pictures/report.py."""

import sys

from wm.pictures.report import main

if __name__ == "__main__":
    sys.exit(main())
