"""``python -m edc.monitor``: the command lives in :mod:`edc.runs.monitor`."""
import sys

from edc.runs.monitor import main

if __name__ == "__main__":
    sys.exit(main())
