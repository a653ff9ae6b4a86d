"""The HubSpot adapter's translation on a large portal's exports: rows per second.

    python -m benchmarks.adapter_hubspot --rows 2000000 [--repeat 3] [--shape history wide] [--load]

Writes, deterministically by --seed, in a temp dir: the pipelines JSON (two pipelines, one with
custom numeric stage ids) and one export per --shape:

* `history`: the long property history (objectId, property, value, timestamp, sourceType,
  sourceId, sourceLabel, updatedByUserId) of --rows rows: about 18 rows per deal (stage moves,
  amount, close date, currency, forecast category, owner, pipeline, deal name, deal type, lost
  reason and properties the adapter does not read), ISO timestamps with milliseconds and epoch
  milliseconds for imported rows, a few bad timestamps and empty ids;
* `wide`: the UI's deal export (every value quoted) of --rows deals with 'Date entered "Stage
  (Pipeline)"' and 'Date exited' columns for both pipelines;
* `json`: v3 deal pages with propertiesWithHistory (dealstage, amount, closedate,
  closed_lost_reason), --rows stage and money versions in all.

Then it times the adapter's translation of each export (with the pipelines file) on each export, in this process, --repeat
times (median printed), and with --load the whole `funnelboard load --source hubspot` in a child.
The adapter is reached through the registry (`funnelboard.etl.sources.registry`, ADAPTERS), so the
same script measures any version of funnelboard on the import path (PYTHONPATH decides which).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

DEFAULT_STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
                  "contractsent", "closedwon", "closedlost"]
DEFAULT_LABELS = ["Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled", "Decision Maker Bought-In",
                  "Contract Sent", "Closed Won", "Closed Lost"]
CUSTOM_STAGES = ["152118301", "152118302", "152118303", "152118304", "152118305"]
CUSTOM_LABELS = ["Discovery", "Scoping", "Proposal", "Closed Won", "Closed Lost"]
PIPELINES = {"default": ("Sales Pipeline", DEFAULT_STAGES, DEFAULT_LABELS),
             "79104512": ("BPO Outsourcing", CUSTOM_STAGES, CUSTOM_LABELS)}
LOST_REASONS = ["Pricing too high", "No budget", "Chose a competitor", "Timing, revisit next quarter", "Kept in-house"]
OWNERS = [str(4100 + i) for i in range(40)]
SOURCES = ["ORGANIC_SEARCH", "PAID_SEARCH", "REFERRALS", "OFFLINE", "DIRECT_TRAFFIC", "SOCIAL_MEDIA"]
FORECAST = ["PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMIT"]
CURRENCIES = ["EUR", "USD", "GBP"]
OTHER_PROPERTIES = ["hs_lastmodifieddate", "hs_deal_stage_probability", "hs_num_associated_contacts", "notes_last_updated"]
ACTORS = [("CRM_UI", "userId:{o}", "Dana Whitfield", "{o}"), ("AUTOMATION_PLATFORM", "workflowId:88123", "Stage sync, nightly", ""),
          ("API", "app:20931", "Deal sync", ""), ("IMPORT", "import:5521", "Q1 import", "")]

CONFIG = """
[labels]
"Appointment Scheduled" = "sql"
"Qualified To Buy" = "opportunity"
"Presentation Scheduled" = "opportunity"
"Decision Maker Bought-In" = "opportunity"
"Contract Sent" = "proposal"
"Closed Won" = "won"
"Closed Lost" = "lost"
"Discovery" = "sql"
"Scoping" = "opportunity"
"Proposal" = "proposal"
"""
START = datetime(2023, 1, 2, tzinfo=timezone.utc)


def _csv(value: str) -> str:
    return f'"{value.replace(chr(34), chr(34) * 2)}"' if any(c in value for c in ',"\n') else value


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _epoch(at: datetime) -> str:
    return str(int(at.timestamp() * 1000))


def _deal_path(rng: random.Random) -> tuple[str, list[int]]:
    """A pipeline id and the stage indexes a deal went through, in order (mostly forward, some loops)."""
    pipeline = "default" if rng.random() < 0.7 else "79104512"
    stages = PIPELINES[pipeline][1]
    won, lost = len(stages) - 2, len(stages) - 1
    path = [0]
    while len(path) < 9:
        here = path[-1]
        if here >= won:
            break
        r = rng.random()
        if r < 0.18:
            path.append(lost)
        elif r < 0.28 and here > 0:
            path.append(here - 1)  # a regression
        elif r < 0.36:
            break  # still open
        else:
            path.append(min(here + rng.choice((1, 1, 2)), won))
    return pipeline, path


def _moments(rng: random.Random, n: int) -> list[datetime]:
    at = START + timedelta(days=rng.randrange(900), seconds=rng.randrange(86400), milliseconds=rng.randrange(1000))
    out = []
    for _ in range(n):
        out.append(at)
        at += timedelta(hours=rng.randrange(2, 400), seconds=rng.randrange(3600), milliseconds=rng.randrange(1000))
    return out


def write_pipelines(path: Path) -> None:
    results = [{"id": pid, "label": label, "displayOrder": i,
                "stages": [{"id": s, "label": lab, "displayOrder": j} for j, (s, lab) in enumerate(zip(ids, labels))]}
               for i, (pid, (label, ids, labels)) in enumerate(PIPELINES.items())]
    path.write_text(json.dumps({"results": results}, indent=1))


def write_history(path: Path, rows: int, rng: random.Random) -> int:
    """The long property history of `rows` rows (the last deal cut short); returns the deals written."""
    written = deal = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("objectId,property,value,timestamp,sourceType,sourceId,sourceLabel,updatedByUserId\n")
        while written < rows:
            deal += 1
            did = str(1_000_000 + deal)
            pipeline, path_ = _deal_path(rng)
            stages = PIPELINES[pipeline][1]
            times = _moments(rng, len(path_) + 4)
            owner = rng.choice(OWNERS)
            actor = ACTORS[3] if rng.random() < 0.1 else ACTORS[0]
            recs: list[tuple[str, str, datetime]] = [
                ("dealname", f"Account {deal % 9973} - {rng.choice(('voice', 'chat, EMEA', 'back-office'))}", times[0]),
                ("pipeline", pipeline, times[0]), ("hubspot_owner_id", owner, times[0]),
                ("dealtype", rng.choice(("newbusiness", "existingbusiness")), times[0]),
                ("hs_analytics_source", rng.choice(SOURCES), times[0]),
                ("deal_currency_code", rng.choice(CURRENCIES), times[0]),
                ("amount", str(rng.randrange(5, 400) * 500), times[0]),
                ("closedate", _iso(times[-1].replace(hour=0, minute=0, second=0, microsecond=0)), times[0]),
                ("hs_manual_forecast_category", FORECAST[0], times[0]),
            ]
            for i, stage in enumerate(path_):
                recs.append(("dealstage", stages[stage], times[i]))
                recs.append(("hs_lastmodifieddate", _iso(times[i]), times[i]))
                if stage == len(stages) - 1:
                    recs.append(("closed_lost_reason", rng.choice(LOST_REASONS), times[i]))
            for _ in range(rng.randrange(0, 3)):  # money changes between moves
                at = times[rng.randrange(len(path_))] + timedelta(hours=rng.randrange(1, 48))
                prop = rng.choice(("amount", "closedate", "hs_manual_forecast_category"))
                value = (str(rng.randrange(5, 400) * 500) if prop == "amount" else _epoch(at + timedelta(days=rng.randrange(10, 90)))
                         if prop == "closedate" else rng.choice(FORECAST))
                recs.append((prop, value, at))
            if rng.random() < 0.3:
                recs.append(("hubspot_owner_id", rng.choice(OWNERS), times[len(path_) // 2]))
            for prop in OTHER_PROPERTIES[1:]:
                recs.append((prop, str(rng.randrange(100)), times[rng.randrange(len(path_))]))
            recs.sort(key=lambda r: r[2])
            for prop, value, at in recs:
                if written >= rows:
                    break
                stamp = _epoch(at) if actor[0] == "IMPORT" else _iso(at)
                oid = did
                if rng.random() < 0.0005:
                    stamp = at.strftime("%d/%m/%Y %H:%M")  # a bad timestamp
                elif rng.random() < 0.0003:
                    oid = ""
                kind, source, label, user = actor
                out.write(",".join((oid, prop, _csv(value), stamp, kind, source.format(o=owner), _csv(label),
                                    user.format(o=owner))) + "\n")
                written += 1
    return deal


def write_wide(path: Path, rows: int, rng: random.Random) -> None:
    """The UI's deal export, every value quoted, one row per deal."""
    entered = [(pid, i) for pid, (_, ids, _) in PIPELINES.items() for i in range(len(ids))]
    head = ["Record ID", "Deal Name", "Deal Stage", "Pipeline", "Amount", "Create Date", "Close Date", "Deal owner",
            "Deal Type", "Closed Lost Reason", "Original Source"]
    for pid, i in entered:
        label = f"{PIPELINES[pid][2][i]} ({PIPELINES[pid][0]})"
        head += [f'Date entered "{label}"', f'Date exited "{label}"']

    def q(v: str) -> str:
        return '"' + v.replace('"', '""') + '"'

    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(q(h) for h in head) + "\n")
        for deal in range(1, rows + 1):
            pipeline, path_ = _deal_path(rng)
            label, _, labels = PIPELINES[pipeline]
            times = _moments(rng, len(path_) + 1)
            when: dict[int, tuple[str, str]] = {}
            for i, stage in enumerate(path_):
                when[stage] = (times[i].strftime("%Y-%m-%d %H:%M"), times[i + 1].strftime("%Y-%m-%d %H:%M"))
            last = path_[-1]
            lost = last == len(labels) - 1
            row = [str(2_000_000 + deal), f"Account {deal % 9973} - {rng.choice(('voice', 'chat, EMEA', 'back-office'))}",
                   labels[last], label, str(rng.randrange(5, 400) * 500), times[0].strftime("%Y-%m-%d %H:%M"),
                   times[-1].strftime("%Y-%m-%d"), f"Owner {rng.choice(OWNERS)}", rng.choice(("New Business", "Existing Business")),
                   rng.choice(LOST_REASONS) if lost else "", rng.choice(SOURCES)]
            for pid, i in entered:
                start, end = when.get(i, ("", "")) if pid == pipeline else ("", "")
                row += [start, "" if i == last else end]
            out.write(",".join(q(v) for v in row) + "\n")


def write_json(path: Path, rows: int, rng: random.Random) -> None:
    """v3 deal pages (100 deals each) with propertiesWithHistory; `rows` versions in all."""
    pages, page, written, deal = [], [], 0, 0
    while written < rows:
        deal += 1
        pipeline, path_ = _deal_path(rng)
        stages = PIPELINES[pipeline][1]
        times = _moments(rng, len(path_) + 1)
        history = {"dealstage": [{"value": stages[s], "timestamp": _iso(times[i]), "sourceType": "CRM_UI",
                                  "sourceId": "userId:4101", "updatedByUserId": 4101} for i, s in enumerate(path_)][::-1],
                   "amount": [{"value": str(rng.randrange(5, 400) * 500), "timestamp": _iso(times[0]), "sourceType": "CRM_UI"}],
                   "closedate": [{"value": _iso(times[-1]), "timestamp": _iso(times[0]), "sourceType": "CRM_UI"}]}
        if path_[-1] == len(stages) - 1:
            history["closed_lost_reason"] = [{"value": rng.choice(LOST_REASONS), "timestamp": _iso(times[len(path_) - 1])}]
        written += sum(len(v) for v in history.values())
        page.append({"id": str(3_000_000 + deal), "properties": {"dealstage": stages[path_[-1]], "pipeline": pipeline,
                                                                "hubspot_owner_id": rng.choice(OWNERS), "dealtype": "newbusiness"},
                     "propertiesWithHistory": history, "archived": False})
        if len(page) == 100:
            pages.append({"results": page})
            page = []
    if page:
        pages.append({"results": page})
    path.write_text(json.dumps(pages))


WRITERS = {"history": ("deal_property_history.csv", write_history), "wide": ("deals_export.csv", write_wide),
           "json": ("deals_v3.json", write_json)}


def write_exports(folder: Path, rows: int, shapes: list[str], seed: int) -> dict[str, Path]:
    write_pipelines(folder / "pipelines.json")
    (folder / "funnel.toml").write_text(CONFIG)
    out = {}
    for shape in shapes:
        name, writer = WRITERS[shape]
        writer(folder / name, rows, random.Random(f"{seed}-{shape}"))
        out[shape] = folder / name
    return out


def time_translation(folder: Path, export: Path, repeat: int) -> tuple[list[float], int, int]:
    """Seconds of each translation, the export's source rows and the events made."""
    from funnelboard.core.config import load_config
    from funnelboard.etl.sources.registry import get_adapter

    config = load_config(folder / "funnel.toml")
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        t = get_adapter("hubspot")([folder / "pipelines.json", export], config, {})
        seconds.append(time.perf_counter() - started)
    return seconds, t.source_rows[str(export)], t.events.num_rows


def time_load(folder: Path, export: Path) -> float:
    db = folder / "wh.duckdb"
    db.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "funnelboard", "load", "--quiet", "--source", "hubspot", "--config",
           str(folder / "funnel.toml"), "--db", str(db), str(folder / "pipelines.json"), str(export)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=folder, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of each export (deals for the wide export)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--shape", nargs="+", choices=sorted(WRITERS), default=["history", "wide"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--load", action="store_true", help="also time funnelboard load --source hubspot")
    parser.add_argument("--workdir", type=Path, default=None, help="where the temp dir goes")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON (benchmarks.run reads it)")
    args = parser.parse_args(argv)
    figures: dict = {"shapes": {}}

    import funnelboard.etl.sources.hubspot as adapter

    folder = Path(tempfile.mkdtemp(prefix="fb-hubspot-", dir=args.workdir))
    try:
        print(f"adapter: {adapter.__file__}", flush=True)
        started = time.perf_counter()
        exports = write_exports(folder, args.rows, args.shape, args.seed)
        print(f"wrote {', '.join(f'{p.name} ({p.stat().st_size / 1e6:,.0f} MB)' for p in exports.values())} "
              f"in {time.perf_counter() - started:.1f} s", flush=True)
        for shape, export in exports.items():
            seconds, rows, events = time_translation(folder, export, args.repeat)
            med = statistics.median(seconds)
            figures["shapes"][shape] = {"rows": rows, "events": events, "seconds": med, "runs": seconds}
            print(f"{shape}: {rows:,} rows -> {events:,} events; translation {med:.2f} s median of "
                  f"{', '.join(f'{s:.2f}' for s in seconds)}: {rows / med:,.0f} rows/s", flush=True)
            if args.load:
                seconds = [time_load(folder, export) for _ in range(args.repeat)]
                med = statistics.median(seconds)
                print(f"{shape}: funnelboard load --source hubspot {med:.2f} s median of "
                      f"{', '.join(f'{s:.2f}' for s in seconds)}: {rows / med:,.0f} rows/s", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
