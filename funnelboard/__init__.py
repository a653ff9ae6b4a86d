"""funnelboard: sales-funnel analytics for BPO providers."""

from funnelboard.errors import UserError

__version__ = "0.1.0"

__all__ = ["UserError", "__version__"]
