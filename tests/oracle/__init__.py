"""The independent plain-Python oracle of docs/metrics.md, its strategies and its own tests."""
