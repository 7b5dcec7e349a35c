"""edc: energy decay curves from room features."""
