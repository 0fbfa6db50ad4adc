"""Benchmarks of the service: search, approximate structures, re-ranking, HTTP load, index build."""
