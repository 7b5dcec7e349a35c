"""Room datasets: the features schema, validation, the compact / folder / demo layouts, splits, the
sampler and the generator's chunked simulation."""
from edc.data.layouts import (
           RoomDataset,
           load_compact,
           load_dataset,
           load_demo,
           load_folder,
           write_compact,
)
from edc.data.schema import ABSORPTION, DIMENSIONS, FEATURES, GEOMETRY, RECEIVER, SOURCE
from edc.data.validation import read_features, validate_edcs, validate_features

__all__ = ["ABSORPTION", "DIMENSIONS", "FEATURES", "GEOMETRY", "RECEIVER", "SOURCE", "RoomDataset", "load_compact",
           "load_dataset", "load_demo", "load_folder", "read_features", "validate_edcs", "validate_features",
           "write_compact"]
