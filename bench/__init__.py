"""Benchmark of the Switchboard suite: load, capture-to-note latency, baseline, profile."""
