"""Each correction of warehouse/dialects.py, proved on Spark: without it Spark fails or differs
from DuckDB; with it Spark returns DuckDB's rows. Placeholders bound as literals round-trip."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal

import duckdb
import pytest
import sqlglot

from funnelboard.warehouse.dialects import CORRECTIONS, bind_literals, compile_query, literal

# correction -> (DuckDB query, what Spark does with sqlglot's output alone: an error class, or "differs")
PROOFS = {
    "quantile": (
        "select quantile_cont(x, 0.9) as p90, quantile_disc(x, 0.99) as p99, quantile_cont(x, 0.5) filter (where x > 2) as p50 "
        "from (select unnest(cast([1.0, 2.0, 3.5, 4.0, 10.0] as double[])) as x)",
        "WRONG_NUM_ARGS",
    ),
    "product": (
        "select k, product(x) over (order by k rows between unbounded preceding and current row) as running "
        "from (select unnest([1, 2, 3, 4, 5]) as k, unnest([0.5, -2.0, null, 0.25, 0.0]) as x) order by k",
        "UNRESOLVED_ROUTINE",
    ),
    "generator-cast": (
        "select cast(unnest(generate_series(date '2024-01-01', date '2024-01-29', interval 7 day)) as date) as week",
        "UNSUPPORTED_GENERATOR",
    ),
    "parallel-unnest": ("select unnest(['p50', 'p75', 'p90']) as q, unnest([1.5, 2.5, 3.5]) as days", "differs"),
    "named-window": (
        "select k, sum(x) over (w rows between unbounded preceding and current row) as running, "
        "first_value(x) over (w rows between current row and unbounded following) as later "
        "from (select unnest([1, 2, 3]) as k, unnest([10, 20, 30]) as x) window w as (order by k) order by k",
        "PARSE_SYNTAX_ERROR",
    ),
    "epoch": ("select epoch_us(timestamp '2024-03-31 03:30:00.123456') as us", "UNRESOLVED_ROUTINE"),
    "timezone": (
        "select timezone('Europe/Berlin', timezone('UTC', timestamp '2024-03-31 01:30:00')) as berlin, "
        "timezone('America/New_York', timezone('UTC', timestamp '2024-11-03 05:30:00')) as new_york",
        "UNRESOLVED_ROUTINE",
    ),
    "arg-max-nulls": (
        "select arg_max(x, k) as latest, arg_min(x, k) as earliest "
        "from (select unnest([null, 'a', 'b', null]) as x, unnest([4, 3, 2, 1]) as k)",
        "differs",
    ),
    "decimal-division": ("select 1234567 / 86400000000.0 as days", "differs"),
    "regexp-flags": (
        "select regexp_replace('A  b \t C', '\\s+', ' ', 'g') as spaces, regexp_replace('aXbx', 'x', '-', 'gi') as folded",
        "differs",
    ),
}


def duck_rows(sql: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        return [tuple(r) for r in con.execute(sql).fetchall()]
    finally:
        con.close()


def spark_rows(spark, sql: str) -> list[tuple]:
    return [tuple(r) for r in spark.sql(sql).collect()]


def equal(a: list[tuple], b: list[tuple]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if len(x) != len(y):
            return False
        for u, v in zip(x, y):
            if type(u) is not type(v):  # a DECIMAL where DuckDB has a DOUBLE differs
                return False
            if isinstance(u, float):
                if not ((math.isnan(u) and math.isnan(v)) or abs(u - v) <= 1e-12 * max(1.0, abs(u))):
                    return False
            elif u != v:
                return False
    return True


def test_every_correction_has_a_proof():
    assert set(PROOFS) == {c.name for c in CORRECTIONS if "spark" in c.dialects}


@pytest.mark.parametrize("name", list(PROOFS))
def test_the_correction_makes_spark_return_duckdbs_rows(spark, name):
    sql, _without = PROOFS[name]
    expected = duck_rows(sql)
    actual = spark_rows(spark, compile_query(sql, "spark"))
    assert equal(expected, actual), (expected, actual)


@pytest.mark.parametrize("name", list(PROOFS))
def test_without_the_correction_spark_fails_or_differs(spark, name):
    sql, without = PROOFS[name]
    bare = compile_query(sql, "spark", skip=frozenset({name}))
    if without == "differs":
        assert not equal(duck_rows(sql), spark_rows(spark, bare)), bare
    else:
        with pytest.raises(Exception, match=without):
            spark_rows(spark, bare)


def test_kaplan_meier_product_is_exact_to_1e9_over_many_factors(spark):
    """exp(sum(ln)) against DuckDB's product() over 2,000 factors of a KM curve."""
    sql = (
        "select n, product(1 - 1 / n) over (order by n desc rows between unbounded preceding and current row) as s "
        "from (select unnest(range(2, 2002)) as n) order by n desc"
    )
    expected, actual = duck_rows(sql), spark_rows(spark, compile_query(sql, "spark"))
    assert len(actual) == 2000
    assert all(abs(a[1] - b[1]) <= 1e-9 for a, b in zip(expected, actual))


VALUES = {
    "text": "O'Brien \\ back\\slash\nünïcødé",
    "stamp": datetime(2026, 3, 29, 1, 30, 0, 123456),
    "day": date(2026, 2, 28),
    "share": 0.1,
    "count": 9_007_199_254_740_993,
    "flag": True,
    "nothing": None,
    "widths": [0.5, 1.0, 7.0],
}


def test_placeholders_bound_as_literals_round_trip_on_spark(spark):
    sql = "select " + ", ".join(f"${k} as {k}" for k in VALUES)
    row = spark.sql(compile_query(sql, "spark", VALUES)).collect()[0].asDict()
    assert row == VALUES
    assert isinstance(row["share"], float) and not isinstance(row["share"], Decimal)


def test_placeholders_bound_as_literals_mean_the_same_in_duckdb():
    sql = "select " + ", ".join(f"${k} as {k}" for k in VALUES)
    bound = bind_literals(sqlglot.parse_one(sql, read="duckdb"), VALUES).sql("duckdb")
    assert "$" not in bound
    assert dict(zip(VALUES, duck_rows(bound)[0])) == VALUES


def test_binding_refuses_what_it_cannot_bind():
    with pytest.raises(KeyError, match=r"\$missing"):
        bind_literals(sqlglot.parse_one("select $missing", read="duckdb"), {})
    with pytest.raises(ValueError, match="naive UTC"):
        literal(datetime(2026, 1, 1, tzinfo=__import__("datetime").timezone.utc))
