"""The names of what every training run logs per epoch: the checkpoint's and early stopping's monitors,
and what a search (``hparams_search``) may minimise and prune on."""

VALIDATION_PARAMETERS = ("edt", "t20", "c50")  # logged as val/<p>_mae (broadband curve; s, s, dB)
MONITORED = ("val/loss", "val/edc_mae", *(f"val/{p}_mae" for p in VALIDATION_PARAMETERS), "train/loss")
# runs on data with bands also log val/<p>_bands_mae: the mean over the 7 octave bands and the rooms
BAND_ERRORS = tuple(f"val/{p}_bands_mae" for p in VALIDATION_PARAMETERS)
OBJECTIVES = (*MONITORED[:-1], *BAND_ERRORS)
