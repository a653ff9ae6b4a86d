"""funnelboard's benchmark harness: `python -m benchmarks.run --events N` (see benchmarks/README.md)."""
