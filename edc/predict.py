"""``python -m edc.predict``: the command lives in :mod:`edc.cli.predict`."""
from edc.cli.entry import composed_once
from edc.cli.predict import main, run

if __name__ == "__main__":
    composed_once("predict", main, run)()
