"""``python -m edc.predict``: the command lives in :mod:`edc.cli.predict`."""
from edc.cli.entry import entrypoint
from edc.cli.predict import main

if __name__ == "__main__":
    entrypoint(main)()
