"""``python -m edc.gpu``: the command lives in :mod:`edc.cli.gpu`."""
import sys

from edc.cli.gpu import main

if __name__ == "__main__":
    sys.exit(main())
