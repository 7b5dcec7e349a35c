"""``python -m edc.evaluate``: the command lives in :mod:`edc.cli.evaluate`."""
from edc.cli.entry import entrypoint
from edc.cli.evaluate import main

if __name__ == "__main__":
    entrypoint(main)()
