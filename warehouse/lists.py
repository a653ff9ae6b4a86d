"""Lists a window at a time: sorted, cut and counted in SQL.

The stalled list and the leads behind a number run to millions of rows at 10M events. The
dashboard shows them a block at a time (AG Grid's infinite row model), so a block costs a
block: `Slice` says which rows in which order, the list metric puts the ORDER BY, LIMIT and
OFFSET into its SQL (sort columns checked against the list's own columns, values bound). The
list's length comes from the list's own count (stalled_summary, the conversion cohort): a
`count(*) over ()` beside the rows made DuckDB carry every row of the list, all columns, through a
single-threaded window (0.2-0.3 s for a million stalled spells), where a count is a pass of its own
that the header of the page runs anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from funnelboard.core.errors import UserError


@dataclass(frozen=True)
class Slice:
    """Rows [offset, offset + limit) of a list in the order asked (limit None: every row)."""

    offset: int = 0
    limit: int | None = None
    sort: tuple[tuple[str, bool], ...] = ()  # (output column, descending), then the list's own order

    def __post_init__(self) -> None:
        if self.offset < 0 or (self.limit is not None and self.limit < 0):
            raise UserError("a list window needs a non-negative offset and limit.")


EVERYTHING = Slice()


def ordering(sl: Slice, columns: dict[str, exp.Expression], default: list[tuple[str, bool]]) -> list[exp.Ordered]:
    """ORDER BY keys: the asked sort (columns from the allow-list only), then the list's default order."""
    keys: list[exp.Ordered] = []
    seen: set[str] = set()
    for name, desc in (*sl.sort, *default):
        if name not in columns:
            raise UserError(f"cannot sort by '{name}'; sortable columns: {', '.join(columns)}.")
        if name in seen:
            continue
        seen.add(name)
        keys.append(exp.Ordered(this=columns[name].copy(), desc=desc, nulls_first=False))
    return keys


def cut(select: exp.Select, sl: Slice, params: dict) -> None:
    """Give a SELECT the window's LIMIT / OFFSET (bound)."""
    if sl.limit is None and not sl.offset:
        return
    params["page_limit"] = sl.limit
    params["page_offset"] = sl.offset
    select.limit(exp.Placeholder(this="page_limit"), copy=False)
    select.offset(exp.Placeholder(this="page_offset"), copy=False)


def with_total(rows: list[dict], sl: Slice, count) -> tuple[list[dict], int]:
    """The window's rows and the list's length: counted from the rows when they are all of it (the
    whole list, or a first window shorter than asked), else by `count()`."""
    if (sl.limit is None and not sl.offset) or (not sl.offset and len(rows) < (sl.limit or 0)):
        return rows, len(rows)
    return rows, count()
