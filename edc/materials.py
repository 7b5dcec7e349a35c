"""``python -m edc.materials``: the command lives in :mod:`edc.cli.materials`."""
import sys

from edc.cli.materials import main

if __name__ == "__main__":
    sys.exit(main())
