"""The commands (``python -m edc.train``, ``evaluate``, ``predict``, ``generate``, ``gpu``): Hydra at the edge,
config checks, exit codes."""
