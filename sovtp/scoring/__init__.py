"""Parsing model answers into predictions (issue 3); metrics follow (issue 4)."""
