"""Verdicts: from stored results to per-problem error rates, statistics, gates and status lines."""
