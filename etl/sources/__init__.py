"""Source adapters: CRM exports in, canonical events out (contract in etl/sources/base.py)."""

from funnelboard.etl.sources.base import Rejection, SourceTable, Translation, file_key, read_table, string_table
from funnelboard.etl.sources.registry import ADAPTERS, get_adapter

__all__ = [
    "ADAPTERS",
    "Rejection",
    "SourceTable",
    "Translation",
    "file_key",
    "get_adapter",
    "read_table",
    "string_table",
]
