"""Lists a window at a time: sorted, cut and counted in SQL.

The stalled list and the leads behind a number run to millions of rows at 10M events. The
dashboard shows them a block at a time (AG Grid's infinite row model), so a block costs a
block: `Slice` says which rows in which order, the list metric puts the ORDER BY, LIMIT and
OFFSET into its SQL (sort columns checked against the list's own columns, values bound), and
a `count(*) over ()` beside the rows gives the total without a second pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from funnelboard.errors import UserError

TOTAL = "total_rows"


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
    """Give a SELECT the window's LIMIT / OFFSET (bound) and the total row count beside each row."""
    if sl.limit is None and not sl.offset:
        return
    select.select(exp.alias_(exp.Window(this=exp.Count(this=exp.Star())), TOTAL), append=True, copy=False)
    params["page_limit"] = sl.limit
    params["page_offset"] = sl.offset
    select.limit(exp.Placeholder(this="page_limit"), copy=False)
    select.offset(exp.Placeholder(this="page_offset"), copy=False)


def split_total(rows: list[dict], sl: Slice, count) -> tuple[list[dict], int]:
    """The rows without the total column, and the total (from the rows, else from `count()`)."""
    if sl.limit is None and not sl.offset:
        return rows, len(rows)
    if not rows:
        return rows, (count() if sl.offset else 0)
    total = rows[0][TOTAL]
    for row in rows:
        del row[TOTAL]
    return rows, total
