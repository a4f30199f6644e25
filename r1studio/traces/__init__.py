"""Sampled completions with their rewards: browse, inspect and compare."""
