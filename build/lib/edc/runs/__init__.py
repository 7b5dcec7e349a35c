"""Run dirs: what a run records, reading them back, comparing runs, watching sweeps, sweep summaries."""
