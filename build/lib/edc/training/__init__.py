"""Training with Lightning: the datamodule, the module (a Surrogate with a loss), losses, metrics,
evaluation of a split, the run's callbacks and its console and plots."""
