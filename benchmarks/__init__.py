"""Benchmarks: each ``bench_*.py`` prints speed ratios against a baseline measured in the same run."""
