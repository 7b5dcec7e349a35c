"""edc: predict room-acoustic energy decay curves (EDCs) from shoebox-room features."""


def load(ckpt_path):
    """Load a trained checkpoint: ``edc.load(ckpt).predict(features_dataframe)``."""
    from edc.api import load as _load

    return _load(ckpt_path)
