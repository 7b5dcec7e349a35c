"""Room acoustics in plain numpy/torch: ISO 3382-1 parameters, energy decay curves (broadband and per
octave band), the closed-form acoustics of a shoebox (:mod:`edc.acoustics.room`) and its simulation
(:mod:`edc.acoustics.simulate`)."""
from edc.acoustics.decay_curves import (
    FILTER_ORDER,
    OCTAVE_BANDS_HZ,
    energy_decay_curve,
    n_samples,
    octave_filter_bank,
)
from edc.acoustics.iso3382 import (
    DECAY_LIMITS_DB,
    PARAMETERS,
    c50,
    c80,
    clarity,
    d50,
    decay_time,
    definition,
    edt,
    level_db,
    parameters,
    t20,
    t30,
)

__all__ = ["DECAY_LIMITS_DB", "FILTER_ORDER", "OCTAVE_BANDS_HZ", "PARAMETERS", "c50", "c80", "clarity", "d50",
           "decay_time", "definition", "edt", "energy_decay_curve", "level_db", "n_samples", "octave_filter_bank",
           "parameters", "t20", "t30"]
