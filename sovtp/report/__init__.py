"""Reports of a run: report.json (numbers), report.md (for a paper draft), report.html (to read)."""
