"""Benchmarks: one script per number, each printing ratios against a baseline measured in the same run."""
