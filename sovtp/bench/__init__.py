"""Benchmark runs: systems × prompt variants × samples, resumable, cached, reported."""
