"""`python -m wm.pipeline`: the command; its code is wm/orchestration/pipeline.py."""

import sys

from wm.orchestration.pipeline import main

if __name__ == "__main__":
    sys.exit(main())
