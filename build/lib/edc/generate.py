"""``python -m edc.generate``: the command lives in :mod:`edc.cli.generate`."""
from edc.cli.entry import entrypoint
from edc.cli.generate import main

if __name__ == "__main__":
    entrypoint(main)()
