"""Evaluation: suites, metrics with intervals, search (notebook 05)."""
