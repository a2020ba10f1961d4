"""`python -m spell train|eval|prepare-model ...` (see spell/cli.py)."""

import sys

from spell.cli import main

if __name__ == "__main__":
    sys.exit(main())
