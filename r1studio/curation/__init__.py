"""Datasets, immutable dataset versions, the annotation queue and labels."""
