"""Build a fixed set of warehouses with the importable funnelboard, and compare two such sets table by table.

For changes that must not change any output (a faster model, a cheaper load): build the set with
the code before the change, again with the code after it, and compare. Every table and view of
each warehouse is compared as a multiset of rows, with its column names, order and types.

    python -m benchmarks.model_snapshot build WORKDIR LABEL    inputs in WORKDIR/inputs (made once), warehouses in WORKDIR/LABEL
    python -m benchmarks.model_snapshot compare DIR_A DIR_B    exit 1 when any warehouse differs

Which code builds is whichever `funnelboard` Python imports (PYTHONPATH). The inputs are generated
once by the first `build` and reused (the Olist case when FUNNELBOARD_OLIST_DIR holds its data), and every load is given the same `now`, so two builds of
unchanged code compare equal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb

from benchmarks.common import PYTHON, ROOT

# meta rows that name the code rather than the data: the models' fingerprint is a hash of the .sql files
VOLATILE_META = ("models_fingerprint",)

# A variant of the built-in funnel: another zone, the strict rule, a calendar-day SLA beside the business-hour ones.
VARIANT = {
    'timezone = "UTC"': 'timezone = "Europe/Berlin"',
    'skipped_stages = "count"': 'skipped_stages = "strict"',
    "# proposal = 30": "proposal = 30",
}


def _generate(inputs: Path) -> None:
    """The input files: demo events (CSV and Parquet), a dirty file and a second dirty file to append,
    a leads file with leads that have events and leads that have none, and the variant funnel.toml."""
    inputs.mkdir(parents=True, exist_ok=True)
    runs = [
        ("demo.csv", ["--leads", "20000", "--seed", "7"]),
        ("demo.parquet", ["--leads", "20000", "--seed", "7"]),
        ("dirty.csv", ["--events", "200000", "--seed", "11", "--dirty"]),
        ("more.csv", ["--events", "60000", "--seed", "12", "--dirty"]),
    ]
    for name, args in runs:
        if not (inputs / name).exists():
            subprocess.run([PYTHON, "-m", "funnelboard", "generate", "--out", str(inputs / name), *args], check=True)
    leads = inputs / "leads.csv"
    if not leads.exists():
        con = duckdb.connect()
        con.execute(
            f"""copy (
                  select lead_id, min(cast(entered_at as timestamp)) - interval 3 day as created_at, 'partner' as channel, null as amount
                  from read_csv('{inputs / 'demo.csv'}', all_varchar = true) where hash(lead_id) % 7 = 0 group by lead_id
                  union all
                  select 'X' || i, timestamp '2025-03-01' + i * interval 1 hour, 'events', cast(i * 100 as varchar)
                  from range(500) as r(i)
                ) to '{leads}' (header)"""
        )
        con.close()
    sparse = inputs / "sparse.csv"
    if not sparse.exists():
        # attributes missing from some events (the latest one with a value is then an earlier event's)
        # and events of one lead at the same moment: what real exports have and the generator does not
        con = duckdb.connect()
        con.execute(f"create table e as select * from read_csv('{inputs / 'demo.csv'}', all_varchar = true)")
        names = [r[0] for r in con.execute("describe e").fetchall()]
        blank = ", ".join(
            f"case when hash({n}, rowid) % 3 = 0 then null else {n} end as {n}" if i > 3 else
            (f"case when hash(rowid) % 9 = 0 then lag({n}) over (order by rowid) else {n} end as {n}" if n == "entered_at" else n)
            for i, n in enumerate(names)
        )
        con.execute(f"copy (select {blank} from e order by rowid) to '{sparse}' (header)")
        con.close()
    variant = inputs / "variant.toml"
    if not variant.exists():
        from funnelboard.core.config import default_config_text

        text = default_config_text()
        for old, new in VARIANT.items():
            assert old in text, f"the built-in funnel.toml no longer holds {old!r}"
            text = text.replace(old, new)
        variant.write_text(text)
    now_file = inputs / "now.txt"
    if not now_file.exists():
        now_file.write_text(datetime.now().replace(microsecond=0).isoformat())


def _cases(inputs: Path) -> dict[str, list[dict]]:
    """Each warehouse: its loads in order (events, leads, source, config)."""
    olist = Path(os.environ.get("FUNNELBOARD_OLIST_DIR", "/nonexistent"))
    cases = {
        "demo": [dict(events=["demo.csv"])],
        "demo_parquet": [dict(events=["demo.parquet"])],
        "demo_leads": [dict(events=["demo.csv"], leads=["leads.csv"])],
        "variant": [dict(events=["demo.csv"], leads=["leads.csv"], config="variant.toml")],
        "dirty_append": [dict(events=["dirty.csv"]), dict(events=["more.csv"])],
        "sparse": [dict(events=["sparse.csv", "more.csv"], leads=["leads.csv"])],
        "replace": [dict(events=["dirty.csv", "more.csv"]), dict(events=["more.csv"], replace=True)],
    }
    if (olist / "olist_closed_deals_dataset.csv").exists():
        # the example's config copied beside the inputs: the warehouse records the config's path
        if not (inputs / "olist.toml").exists():
            shutil.copyfile(ROOT / "examples" / "olist" / "funnel.toml", inputs / "olist.toml")
        cases["olist"] = [dict(
            events=[str(olist / "olist_marketing_qualified_leads_dataset.csv"), str(olist / "olist_closed_deals_dataset.csv")],
            source="wide", config="olist.toml",
        )]
    else:
        print("no Olist warehouse: set FUNNELBOARD_OLIST_DIR to the folder of the Kaggle download (docs/olist.md)", file=sys.stderr)
    return cases


def build(workdir: Path, label: str) -> None:
    from funnelboard.core.config import load_config
    from funnelboard.warehouse.pipeline import load_files

    inputs = workdir / "inputs"
    _generate(inputs)
    now = datetime.fromisoformat((inputs / "now.txt").read_text().strip())
    out = workdir / label
    out.mkdir(parents=True, exist_ok=True)
    for name, loads in _cases(inputs).items():
        db = out / f"{name}.duckdb"
        db.unlink(missing_ok=True)
        for step in loads:
            config = load_config(inputs / step["config"] if "config" in step else None)
            load_files(
                db,
                [inputs / p for p in step["events"]],
                config,
                leads=[inputs / p for p in step.get("leads", [])],
                replace=step.get("replace", False),
                source=step.get("source", "canonical"),
                now=now,
            )
        print(f"built {db}")


def _relations(con: duckdb.DuckDBPyConnection, db: str) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = $db and table_schema = 'main' order by table_name, ordinal_position",
        {"db": db},
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        out.setdefault(table, []).append((column, kind))
    return out


def compare_files(a: Path, b: Path) -> list[str]:
    """The differences between two warehouses: relations, columns and types, rows as multisets."""
    con = duckdb.connect()
    con.execute(f"attach '{a}' as a (read_only)")
    con.execute(f"attach '{b}' as b (read_only)")
    ra, rb = _relations(con, "a"), _relations(con, "b")
    problems = [f"only in {side}: {t}" for side, t in [("a", t) for t in ra if t not in rb] + [("b", t) for t in rb if t not in ra]]
    for table in sorted(set(ra) & set(rb)):
        if ra[table] != rb[table]:
            problems.append(f"{table}: columns differ: {ra[table]} vs {rb[table]}")
            continue
        where = f" where key not in {VOLATILE_META}".replace(",)", ")") if table == "meta" else ""
        qa, qb = f'select * from a."{table}"{where}', f'select * from b."{table}"{where}'
        na, nb = (con.execute(f"select count(*) from ({q})").fetchall()[0][0] for q in (qa, qb))
        only_a = con.execute(f"select count(*) from ({qa} except all {qb})").fetchall()[0][0]
        only_b = con.execute(f"select count(*) from ({qb} except all {qa})").fetchall()[0][0]
        if na != nb or only_a or only_b:
            sample = con.execute(f"{qa} except all {qb} limit 3").fetchall()
            problems.append(f"{table}: {na:,} vs {nb:,} rows, {only_a:,} only in a, {only_b:,} only in b; e.g. {sample}")
    con.close()
    return problems


def compare(dir_a: Path, dir_b: Path) -> int:
    names = sorted({p.name for p in dir_a.glob("*.duckdb")} | {p.name for p in dir_b.glob("*.duckdb")})
    failed = 0
    for name in names:
        a, b = dir_a / name, dir_b / name
        if not (a.exists() and b.exists()):
            print(f"{name}: missing in {'a' if not a.exists() else 'b'}")
            failed += 1
            continue
        problems = compare_files(a, b)
        print(f"{name}: {'same' if not problems else 'DIFFERENT'}")
        for p in problems:
            print(f"  {p}")
        failed += bool(problems)
    print(json.dumps({"warehouses": len(names), "different": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "build":
        build(Path(args[0]), args[1])
    elif mode == "compare":
        sys.exit(compare(Path(args[0]), Path(args[1])))
    else:
        sys.exit(__doc__)
