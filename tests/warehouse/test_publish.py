"""Atomic publish: a load killed at any moment leaves the published warehouse as it was."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from funnelboard.core.errors import UserError
from funnelboard.warehouse import publish
from funnelboard.warehouse.pipeline import load_files
from funnelboard.warehouse.publish import build_path, building, copy_file, load_lock, remove_orphans
from tests.conftest import HEADER, NOW, rows, write


def _big_csv(path: Path, n: int) -> Path:
    con = duckdb.connect()
    con.execute(
        f"""copy (select 'L' || (i // 5) as lead_id,
                         ['New Lead', 'Marketing Qualified', 'Sales Qualified', 'Scoping', 'Proposal Sent'][i % 5 + 1] as stage,
                         strftime(timestamp '2024-01-01' + to_minutes(i), '%Y-%m-%d %H:%M:%S') as entered_at,
                         null as reason, 'inbound' as channel, 'Ann' as owner
                  from range({n}) t(i)) to '{path}' (header, delimiter ',')"""
    )
    con.close()
    return path


@pytest.mark.slow
def test_sigkill_mid_load_leaves_the_published_warehouse_intact(tmp_path, config):
    db = tmp_path / "live.duckdb"
    load_files(db, [write(tmp_path / "first.csv", HEADER + "\nL1,mql,2024-01-02,,x,y\nL2,sql,2024-01-03,,x,y\n")], config, now=NOW)
    published = db.read_bytes()
    big = _big_csv(tmp_path / "big.csv", 3_000_000)

    proc = subprocess.Popen(
        [sys.executable, "-m", "funnelboard", "load", str(big), "--db", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    # Wait until the loader is inside the long read into its private build file.
    for line in proc.stderr:
        if "reading and checking big.csv" in line:
            break
    build_files = list(tmp_path.glob(".live.duckdb.building-*"))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()

    assert proc.returncode == -signal.SIGKILL, "the load must still have been running when killed"
    assert build_files, "the load was writing a private build file, not the live one"
    assert db.read_bytes() == published
    assert rows(db, "select lead_id from raw_events order by 1") == [("L1",), ("L2",)]
    assert rows(db, "select count(*) from load_ledger") == [(1,)]

    # The next load cleans up the orphan and publishes normally.
    report = load_files(db, [write(tmp_path / "second.csv", HEADER + "\nL3,mql,2024-01-04,,x,y\n")], config, now=NOW)
    assert report.published
    assert not list(tmp_path.glob(".live.duckdb.building-*"))
    assert rows(db, "select count(*) from raw_events") == [(3,)]


def test_an_exception_mid_build_deletes_the_copy_and_keeps_the_live_file(tmp_path):
    db = tmp_path / "live.duckdb"
    with load_lock(db), building(db) as con:
        con.execute("create table t as select 1 as x")
    before = db.read_bytes()
    with pytest.raises(RuntimeError), load_lock(db), building(db) as con:
        con.execute("insert into t values (2)")
        raise RuntimeError("boom")
    assert db.read_bytes() == before
    assert not build_path(db).exists()
    assert rows(db, "select x from t") == [(1,)]


def test_the_build_copy_equals_the_live_file_cloned_or_copied_and_writing_it_leaves_the_live_one(tmp_path, monkeypatch):
    live, copy = tmp_path / "live.bin", tmp_path / "copy.bin"
    live.write_bytes(os.urandom(3 << 20))
    before = live.read_bytes()
    assert copy_file(live, copy) in ("clone", "copy")  # "clone" on XFS or btrfs, "copy" on ext4 or tmpfs
    assert copy.read_bytes() == before
    with open(copy, "r+b") as fh:
        fh.seek(1 << 20)
        fh.write(b"\0" * 4096)
    assert live.read_bytes() == before

    def refused(*_args):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(publish.fcntl, "ioctl", refused)
    assert copy_file(live, copy) == "copy"
    assert copy.read_bytes() == before


def test_a_build_on_a_copy_checkpoints_only_when_it_publishes(tmp_path):
    db = tmp_path / "live.duckdb"
    setting = "select current_setting('checkpoint_threshold')"
    with load_lock(db), building(db) as con:  # a new warehouse: DuckDB's default
        default = con.execute(setting).fetchall()
        con.execute("create table t as select 1 as x")
    with load_lock(db), building(db) as con:
        assert con.execute(setting).fetchall() != default
        con.execute("insert into t select range from range(2, 200000)")
    assert rows(db, "select count(*), max(x) from t") == [(199999, 199999)]  # the publish's CHECKPOINT wrote it all
    assert not list(tmp_path.glob("live.duckdb.wal"))


def test_a_reader_keeps_its_snapshot_while_a_load_publishes(tmp_path):
    db = tmp_path / "live.duckdb"
    with load_lock(db), building(db) as con:
        con.execute("create table t as select 1 as x")
    reader = duckdb.connect(str(db), read_only=True)
    with load_lock(db), building(db) as con:
        con.execute("insert into t values (2)")
    assert reader.execute("select count(*) from t").fetchall() == [(1,)]
    reader.close()
    assert rows(db, "select count(*) from t") == [(2,)]


def test_a_second_concurrent_load_is_refused(tmp_path):
    db = tmp_path / "live.duckdb"
    with load_lock(db):
        with pytest.raises(UserError, match="another load into .* is running"):
            with load_lock(db):
                pass


def test_orphans_of_dead_processes_are_removed_but_live_ones_kept(tmp_path):
    db = tmp_path / "live.duckdb"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".live.duckdb.building-{dead.stdout.strip()}"
    mine = tmp_path / f".live.duckdb.building-{os.getpid()}"
    orphan.write_text("x")
    mine.write_text("x")
    assert remove_orphans(db) == [orphan]
    assert mine.exists()


def test_the_gateway_sees_a_new_publish_while_other_threads_still_read_the_old_file(tmp_path):
    """DuckDB caches instances by path: a plain read-only connect would hand back the old file."""
    import threading

    from funnelboard.warehouse.gateway import Gateway

    db = tmp_path / "live.duckdb"
    with load_lock(db), building(db) as con:
        con.execute("create table t as select 1 as x")
    gateway = Gateway(db, cache_rows=0)
    other_thread_saw, read, done = [], threading.Event(), threading.Event()

    def other_thread():  # reads once, then stays alive with its connection open
        other_thread_saw.append(gateway.query("select count(*) from t").rows)
        read.set()
        done.wait()

    reader = threading.Thread(target=other_thread)
    reader.start()
    read.wait()
    try:
        assert gateway.query("select count(*) from t").rows == [(1,)]
        with load_lock(db), building(db) as con:
            con.execute("insert into t values (2)")
        assert gateway.query("select count(*) from t").rows == [(2,)]
    finally:
        done.set()
        reader.join()
    assert other_thread_saw == [[(1,)]]
