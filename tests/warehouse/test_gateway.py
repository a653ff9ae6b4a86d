"""The gateway's DuckDB instance stays inside the server's memory budget and spills beyond it."""

from __future__ import annotations

import pytest

from funnelboard.core.errors import UserError
from funnelboard.warehouse.gateway import READ_MEMORY_LIMIT, Gateway
from funnelboard.warehouse.publish import building, load_lock


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "wh.duckdb"
    with load_lock(path), building(path) as con:
        con.execute("create table t as select range as x from range(10)")
    return path


def _settings(gateway: Gateway) -> tuple[str, str]:
    return gateway.query("select current_setting('memory_limit'), current_setting('temp_directory')").rows[0]


def test_reads_run_under_the_read_memory_limit_with_a_spill_directory(db, monkeypatch):
    monkeypatch.delenv("FUNNELBOARD_READ_MEMORY", raising=False)
    limit, spill = _settings(Gateway(db, cache_rows=0))
    default_mib = int(READ_MEMORY_LIMIT.removesuffix("MB")) * 1000 * 1000 / 2**20
    assert abs(float(limit.split()[0]) - default_mib) < 1 and limit.endswith("MiB")
    assert "funnelboard-spill-" in spill


def test_the_limit_can_be_set_and_a_wrong_one_is_a_clear_error(db, monkeypatch):
    monkeypatch.setenv("FUNNELBOARD_READ_MEMORY", "2GB")
    assert _settings(Gateway(db, cache_rows=0))[0].startswith("1.8 GiB")
    monkeypatch.setenv("FUNNELBOARD_READ_MEMORY", "lots")
    with pytest.raises(UserError, match="not a size like 640MB"):
        Gateway(db)


def _publish(path, rows: int) -> None:
    with load_lock(path), building(path) as con:
        con.execute("create or replace table t as select range as x from range($n)", {"n": rows})


def test_per_file_facts_are_computed_once_per_published_file(db, monkeypatch):
    gateway = Gateway(db, cache_rows=0)  # facts are kept even with the result cache off
    calls = []

    def count() -> int:
        calls.append(1)
        return gateway.query("select count(*) from t").rows[0][0]

    assert gateway.per_file(("n",), count) == 10 and gateway.per_file(("n",), count) == 10
    assert len(calls) == 1
    _publish(db, 20)  # a new file: its own facts
    assert gateway.per_file(("n",), count) == 20 and len(calls) == 2
    monkeypatch.setattr("funnelboard.warehouse.gateway.PER_FILE_KEYS", 3)
    for i in range(5):
        gateway.per_file(("k", i), lambda i=i: i)
    assert gateway.per_file(("k", 0), lambda: "again") == "again"  # the oldest went out
    assert gateway.per_file(("k", 4), lambda: "again") == 4


def test_array_reads_one_column_as_numpy(db):
    values = Gateway(db).array("select x * 2 from t order by x")
    assert values.tolist() == [2 * i for i in range(10)] and values.dtype.kind == "i"
    with pytest.raises(RuntimeError, match="one column"):
        Gateway(db).array("select x, x from t")
    with pytest.raises(RuntimeError, match="NULL"):
        Gateway(db).array("select case when x > 5 then x end from t")
