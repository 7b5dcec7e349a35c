"""Hydra looks for sweepers in the ``hydra_plugins`` package only: this is edc's Optuna sweeper
(``hydra/sweeper=optuna``, set by ``hparams_search=...``). The work is in :mod:`edc.runs.search`, imported
when a search starts (Hydra imports this module whenever it starts, so it stays light)."""
from hydra.plugins.sweeper import Sweeper


class OptunaSweeper(Sweeper):
    """A Hydra sweeper that runs an Optuna study, one training run per trial (``conf/hydra/sweeper/optuna.yaml``)."""

    def __init__(self, **settings):
        self.settings = settings
        self.search = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from edc.runs.search import OptunaSearch

        self.search = OptunaSearch(self.settings, hydra_context, task_function, config)

    def sweep(self, arguments):
        return self.search.sweep(list(arguments))
