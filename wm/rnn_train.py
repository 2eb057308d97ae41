"""`python -m wm.rnn_train`: the command; its code is wm/stages/rnn_train.py."""

import sys

from wm.stages.rnn_train import main

if __name__ == "__main__":
    sys.exit(main())
