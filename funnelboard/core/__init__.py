"""The core every layer may import: the funnel configuration, user errors, progress output and CSV export."""
