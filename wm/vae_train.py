"""`python -m wm.vae_train`: the command; its code is wm/stages/vae_train.py."""

import sys

from wm.stages.vae_train import main

if __name__ == "__main__":
    sys.exit(main())
