"""Benchmarks: they print figures and write them under var/benchmarks; they never fail on a number."""
