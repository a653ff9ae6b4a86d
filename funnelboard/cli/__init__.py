"""The `funnelboard` command line, on top of every layer."""

from funnelboard.cli.main import main
from funnelboard.cli.serve import check_bind, read_accounts

__all__ = ["check_bind", "main", "read_accounts"]
