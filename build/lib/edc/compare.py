"""``python -m edc.compare``: the command lives in :mod:`edc.runs.compare`."""
import sys

from edc.runs.compare import main

if __name__ == "__main__":
    sys.exit(main())
