"""Template filters of the Benchmarks pages."""
