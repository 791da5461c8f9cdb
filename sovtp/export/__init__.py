"""Exports of sovtp's benchmarks to other evaluation harnesses (lmms-eval), built on the one
prepare pipeline so an exported task asks exactly what ``sovtp bench`` asks."""
