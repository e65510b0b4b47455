"""Benchmarks: each module's `run()` returns rows of {name, value, unit, baseline, ratio}; `python -m bench`
runs them all."""
