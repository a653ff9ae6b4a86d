"""What every CRM's pull tests share: run `funnelboard pull` as a user does, kill it, grep for the secret."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[3]


def pull_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a pull subprocess: fast backoff, short timeouts, the test's settings and secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNNELBOARD_")}
    env.update({"FUNNELBOARD_PULL_BACKOFF": "0.01", "FUNNELBOARD_PULL_TIMEOUT": "2", "FUNNELBOARD_PULL_MAX_WAIT": "5"})
    env.update(extra)
    return env


def pull_args(crm: str, db: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "funnelboard", "pull", crm, "--db", str(db), *more]


def run_pull(crm: str, db: Path, env: dict[str, str], *more: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`funnelboard pull CRM --db DB ...` in a child process, as a scheduler would run it."""
    return subprocess.run(pull_args(crm, db, *more), env=pull_env(env), cwd=cwd or db.parent, capture_output=True, text=True, timeout=300)


def start_pull(crm: str, db: Path, env: dict[str, str], *more: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(pull_args(crm, db, *more), env=pull_env(env), cwd=cwd or db.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_when(process: subprocess.Popen, reached, timeout: float = 120) -> None:
    """SIGKILL the pull once `reached` (a threading.Event the server sets) fires: a kill at a known point."""
    try:
        if not reached.wait(timeout):
            process.kill()
            raise AssertionError(f"the pull never reached the gate: {process.communicate()}")
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(60)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
    assert process.returncode == -signal.SIGKILL


def kill_while_loading(process: subprocess.Popen) -> None:
    """SIGKILL the pull when it prints its first "loading events" line: every request is answered and
    the load is writing the private copy of the warehouse (the published file must come out untouched)."""
    try:
        for line in process.stderr:
            if line.startswith("loading events"):
                os.kill(process.pid, signal.SIGKILL)
                break
    finally:
        process.wait(60)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
    assert process.returncode == -signal.SIGKILL, "the pull ended before it began loading"


def table_texts(db: Path) -> str:
    """Every value of every table of the warehouse, as one text: what a grep for a secret reads."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("select table_name from information_schema.tables where table_schema = 'main'").fetchall()]
        parts = []
        for table in tables:
            for row in con.execute(f'select * from "{table}"').fetchall():
                parts.append("\t".join("" if v is None else str(v) for v in row))
        return "\n".join(parts)
    finally:
        con.close()


def assert_secret_nowhere(secret: str, *, outputs: list[str], db: Path | None = None, dirs: list[Path] = (), argv: list[str] = ()) -> None:
    """The secret is in no output, no argv, no file written and no value of the warehouse."""
    assert secret
    for text in outputs:
        assert secret not in (text or ""), "the secret is in the command's output"
    assert all(secret not in a for a in argv), "the secret is on the command line"
    for folder in dirs:
        for path in Path(folder).rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), f"the secret is in {path}"
    if db is not None and db.exists():
        assert secret.encode() not in db.read_bytes(), "the secret is in the warehouse file"
        assert secret not in table_texts(db), "the secret is in a warehouse table"


def events(db: Path) -> list[tuple]:
    """The warehouse's stored events, sorted: what two pulls are compared on. No stage entry may be
    stored twice with different attributes (a record re-fetched after its owner changed must replace
    its rows, not add copies that differ only in the owner)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        copies = con.execute(
            "select lead_id, stage_label, entered_at, reason, count(*) from raw_events "
            "group by all having count(*) > 1 order by all limit 5"
        ).fetchall()
        assert not copies, f"stage entries stored more than once: {copies}"
        return con.execute(
            "select lead_id, stage, stage_label, entered_at, reason from raw_events order by all"
        ).fetchall()
    finally:
        con.close()


def marks(db: Path, crm: str) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute(
            "select object, arg_max(mark, load_id) from pull_marks where source = $s group by object", {"s": crm}
        ).fetchall())
    finally:
        con.close()


def quarantined(db: Path) -> Counter:
    """The quarantine's rows as (lead id, reason, raw text), counted: a row stored twice counts 2."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return Counter(con.execute("select lead_id, reason, raw from quarantine").fetchall())
    finally:
        con.close()


def loads(db: Path) -> int:
    """How many loads the warehouse records: a pull that publishes adds one."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select count(distinct load_id) from load_ledger").fetchall()[0][0]
    finally:
        con.close()


def assert_refresh_equals_full_build(db: Path, config, tmp: Path) -> None:
    """The models a pull refreshed incrementally equal a full build of the same raw tables."""
    from funnelboard.warehouse.pipeline import rebuild
    from tests.warehouse.test_incremental import assert_same_models

    full = tmp / f"{db.stem}-full-build.duckdb"
    shutil.copy(db, full)
    assert rebuild(full, config, full=True).how == "full"
    assert_same_models(db, full)


def lead_facts(db: Path, ids) -> list[tuple]:
    """fct_leads rows of `ids` (every stage reached and when, attributes, amount): what the rates count."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select * from fct_leads where list_contains($ids, lead_id) order by all", {"ids": sorted(ids)}).fetchall()
    finally:
        con.close()


def journeys(db: Path) -> set[str]:
    """The journey ids with stored events or lead rows."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {r[0] for r in con.execute("select lead_id from raw_events union select lead_id from raw_leads").fetchall()}
    finally:
        con.close()
