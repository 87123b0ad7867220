"""Benchmarks against the local broker: ``make bench`` (or ``python -m bench``) prints a table of figures,
each beside the baselines measured in the same run."""
