"""`python -m wm.submit`: the command; its code is wm/orchestration/submit.py."""

import sys

from wm.orchestration.submit import main

if __name__ == "__main__":
    sys.exit(main())
