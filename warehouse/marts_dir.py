"""Serve a Spark build (a directory of Parquet marts) through DuckDB and the one query gateway.

`catalog(DIR)` returns DIR/catalog.duckdb: a small DuckDB file holding views over the build's
Parquet files under the names the gateway, the metrics and the dashboard read (fct_leads,
fct_spells, fct_open_spells, cfg_*, raw_events, raw_leads, quarantine), a `load_ledger` and a `meta` table
made from the manifest. The existing Gateway opens it read-only like any warehouse. The
catalog is rebuilt (atomically) when the manifest or the directory's location changes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import duckdb
from sqlglot import exp

from funnelboard.core.errors import UserError
from funnelboard.etl import raw_schema
from funnelboard.warehouse.models import models_fingerprint
from funnelboard.warehouse.publish import load_lock
from funnelboard.warehouse.spark import MANIFEST, OUTPUTS, read_manifest

CATALOG = "catalog.duckdb"
STAMP_KEY = "marts_stamp"  # meta key: the manifest hash and directory the catalog was made from


def catalog(marts: Path) -> Path:
    """The DuckDB catalog of a marts directory, made or remade when the build changed."""
    marts = Path(marts).resolve()
    if not marts.is_dir():
        raise UserError(f"--marts '{marts}' is not a directory: build one with `funnelboard build --engine spark --events FILE --out DIR`.")
    manifest = read_manifest(marts)
    if manifest["models_fingerprint"] != models_fingerprint():
        raise UserError(
            f"the marts in '{marts}' were built from other model files than this funnelboard's: rebuild them with "
            f"`funnelboard build --engine spark --events FILE --out {marts}`."
        )
    path = marts / CATALOG
    stamp = _stamp(marts)
    if _current(path) == stamp:
        return path
    with load_lock(marts / MANIFEST):
        manifest = read_manifest(marts)
        stamp = _stamp(marts)
        if _current(path) != stamp:
            _write(path, marts, manifest, stamp)
    return path


def _stamp(marts: Path) -> str:
    digest = hashlib.sha256((marts / MANIFEST).read_bytes()).hexdigest()[:16]
    return f"{digest} {marts}"


def _current(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        rows = con.execute("select value from meta where key = $k", {"k": STAMP_KEY}).fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return rows[0][0] if rows else None


def _write(path: Path, marts: Path, manifest: dict, stamp: str) -> None:
    """Write the catalog beside the live one and os.replace it over it (readers see old or new, whole)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        con.execute("SET TimeZone = 'UTC'")
        raw_schema.ensure_schema(con)  # meta, load_ledger and the empty raw tables the schema promises
        missing = [name for name in OUTPUTS if name not in manifest["tables"]]
        if missing:
            raise UserError(f"the Spark build in '{marts}' has no {missing[0]} table: rebuild it with this funnelboard.")
        for name in manifest["tables"]:
            files = str(marts / manifest["tables"][name]["path"] / "*.parquet")
            ident = exp.to_identifier(name, quoted=True).sql("duckdb")
            con.execute(f"drop table if exists {ident}")
            con.execute(f"create view {ident} as select * from read_parquet({exp.Literal.string(files).sql('duckdb')})")
        _ledger(con, manifest)
        meta = {
            "config": manifest["config"],
            "config_source": manifest["config_source"],
            "models_fingerprint": manifest["models_fingerprint"],
            "published_at": manifest["built_at"],
            "funnelboard_version": manifest["funnelboard_version"],
            "engine": "spark",
            "spark_version": manifest["spark_version"],
            "spark_master": manifest["master"],
            "spark_build": manifest["build"],
            STAMP_KEY: stamp,
        }
        for key, value in meta.items():
            raw_schema.set_meta(con, key, value)
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, path)


def _ledger(con: duckdb.DuckDBPyConnection, manifest: dict) -> None:
    """One load_ledger row per input file of the build, saying it was loaded by Spark."""
    note = json.dumps([
        f"built by Apache Spark {manifest['spark_version']} (master {manifest['master']}) with "
        "`funnelboard build --engine spark`; the checks are those of docs/spark.md"
    ])
    rows = []
    for file_id, f in enumerate(manifest["files"], start=1):
        rows.append({
            "file_id": file_id, "load_id": 1, "role": f["role"], "source_file": f["path"], "format": f["format"],
            "sha256": f["sha256"], "size_bytes": f["size_bytes"], "loaded_at": manifest["built_at"],
            "rows_read": f["rows_read"], "rows_loaded": f["rows_loaded"], "rows_quarantined": f["rows_quarantined"],
            "rows_duplicate": f["rows_duplicate"], "first_entered_at": f["first_entered_at"], "last_entered_at": f["last_entered_at"],
            "unknown_labels": json.dumps(f["unknown_labels"]), "config_fingerprint": manifest["config_fingerprint"],
            "source": "canonical", "notes": note,
        })
    for row in rows:
        con.execute(
            """insert into load_ledger (file_id, load_id, role, source_file, format, sha256, size_bytes, loaded_at,
                   rows_read, rows_loaded, rows_quarantined, rows_duplicate, first_entered_at, last_entered_at,
                   unknown_labels, superseded_by, config_fingerprint, source, notes)
               values ($file_id, $load_id, $role, $source_file, $format, $sha256, $size_bytes, $loaded_at,
                   $rows_read, $rows_loaded, $rows_quarantined, $rows_duplicate, $first_entered_at, $last_entered_at,
                   $unknown_labels, null, $config_fingerprint, $source, $notes)""",
            row,
        )
