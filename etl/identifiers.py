"""Names in the loader's SQL: every table and column name is quoted by sqlglot, never by string formatting.

Values are bound as `$name` parameters; a name cannot be, so it goes through `ident`, whatever text
it holds (a column named in funnel.toml, an attribute, a Parquet column such as `Lead "ID"; --`).
"""

from __future__ import annotations

from functools import lru_cache

from sqlglot import exp


@lru_cache(maxsize=4096)
def ident(name: str) -> str:
    """`name` as one quoted DuckDB identifier: text inside it can never end it or start more SQL."""
    if not name:
        raise ValueError("an SQL identifier cannot be empty")
    return exp.to_identifier(name, quoted=True).sql("duckdb")
