"""`python -m wm.render`: the command; its code is wm/pictures/render.py."""

import sys

from wm.pictures.render import main

if __name__ == "__main__":
    sys.exit(main())
