"""funnelboard: sales-funnel analytics for BPO providers.

The import root of every layer: funnelboard.core, funnelboard.etl, funnelboard.warehouse,
funnelboard.dashboard, with the CLI (funnelboard.cli) on top (docs/architecture.md).
"""

__version__ = "0.1.0"
