"""Metric points reported by runs, downsampled series and live streams."""
