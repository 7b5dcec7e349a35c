"""``python -m edc.train``: the command lives in :mod:`edc.cli.train`."""
from edc.cli.entry import entrypoint
from edc.cli.train import main, register_sweeper

if __name__ == "__main__":
    register_sweeper()
    entrypoint(main)()
