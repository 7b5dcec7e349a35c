"""``python -m edc.design``: the command lives in :mod:`edc.cli.design`."""
from edc.cli.design import main
from edc.cli.entry import entrypoint

if __name__ == "__main__":
    entrypoint(main)()
