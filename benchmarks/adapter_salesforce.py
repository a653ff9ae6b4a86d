"""The Salesforce adapter's translation on a large org's exports: rows per second.

    python -m benchmarks.adapter_salesforce --rows 2000000 [--repeat 3] [--shape objects report] [--json FILE]

Writes, deterministically by --seed, in a temp dir, one set of exports per --shape:

* `objects`: the object exports of Data Loader / the Bulk API, about --rows rows in all: Lead (one
  row per lead, about 35 % converted, with ConvertedOpportunityId and ConvertedContactId),
  LeadHistory (a `created` row, the Status changes, and changes of fields the adapter ignores:
  Rating, Owner, Phone, Email; about 55 % of all rows), Opportunity (the converted leads' deals and
  some of their own), OpportunityHistory (stage moves, and rows that changed only the amount,
  close date, forecast category or probability), Task (some open) and Event against leads,
  contacts and opportunities, and OpportunityContactRole. Ids are 18-character with a valid
  case suffix; some references are written with 15 characters; a few rows are deleted, repeated,
  have bad timestamps or empty ids;
* `report`: the Opportunity History report as the UI exports it (Opportunity ID with 15
  characters, From Stage, To Stage, Amount "52,000.00", Close Date and Last Modified in m/d/Y),
  --rows rows, with a footer.

Then it times the adapter's translation of each shape's files, in this process, --repeat times
(median printed). The adapter is reached through the registry (`funnelboard.etl.sources.registry`),
so the same script measures any version of funnelboard on the import path (PYTHONPATH decides which).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

LEAD_STATUSES = ["Open - Not Contacted", "Working - Contacted", "MQL", "SQL", "Nurture"]
STAGES = ["Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won",
          "Closed Lost"]
SOURCES = ["Web", "Partner Referral", "Trade Show", "Purchased List", "Phone Inquiry", "Employee Referral"]
INDUSTRIES = ["Healthcare", "Retail", "Transportation", "Banking", "Telecommunications", "Insurance"]
OWNERS = [f"Owner {i}" for i in range(30)]
LOSS = ["Chose offshore competitor", "No budget", "Price, \"too high\"", "Kept in-house", "Timing"]
DISQUALIFIED = ["No budget", "Not a fit", "Unresponsive"]
FORECAST = ["Pipeline", "Best Case", "Commit", "Omitted"]
OTHER_FIELDS = ["Rating", "Owner", "Phone", "Email", "Company", "Title"]
TITLES = ["Head of Operations", "CFO", "VP Customer Service", "Procurement Manager", "Analyst", "IT Director"]
ROLES = ["Decision Maker", "Economic Buyer", "Evaluator", "Influencer", "Technical Buyer"]
TASK_SUBJECTS = ["Call", "Email", "Send Quote"]

CONFIG = """
[labels]
"Open - Not Contacted" = "lead"
"Working - Contacted" = "lead"
"MQL" = "mql"
"SQL" = "sql"
"Nurture" = "nurture"
"Closed - Not Converted" = "disqualified"
"Closed - Converted" = "opportunity"
"Prospecting" = "opportunity"
"Qualification" = "opportunity"
"Needs Analysis" = "opportunity"
"Proposal/Price Quote" = "proposal"
"Negotiation/Review" = "proposal"
"Closed Won" = "won"
"Closed Lost" = "lost"

[source.salesforce]
reason_field = "Loss_Reason__c"
lead_reason_field = "Disqualification_Reason__c"
report_date_format = "%m/%d/%Y"
"""
START = datetime(2023, 1, 2, tzinfo=timezone.utc)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf_id(prefix: str, n: int) -> str:
    """An 18-character Salesforce id: the key prefix, a pod, n in base 62, and the case suffix."""
    digits = ""
    while n or not digits:
        n, d = divmod(n, 62)
        digits = _B62[d] + digits
    head = prefix + "5g" + digits.rjust(10, "0")
    return head + "".join(_SUFFIX[sum(1 << i for i, c in enumerate(head[k:k + 5]) if c.isupper())] for k in (0, 5, 10))


def _csv(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def _row(values) -> str:
    return ",".join(_csv(v) for v in values) + "\n"


def _bad(rng: random.Random, stamp: str, at: datetime) -> str:
    """Now and then a timestamp as a locale writes it, or an impossible one."""
    r = rng.random()
    if r < 0.0004:
        return at.strftime("%d/%m/%Y %H:%M")
    if r < 0.0006:
        return "2026-02-30T10:00:00.000+0000"
    return stamp


class _Files:
    """The open export files of the `objects` shape and the rows written to each."""

    HEADERS = {
        "Lead": ["Id", "Company", "Status", "LeadSource", "Industry", "Owner.Name", "CreatedDate", "IsConverted", "ConvertedDate",
                 "ConvertedOpportunityId", "ConvertedContactId", "Disqualification_Reason__c", "Title", "IsDeleted"],
        "LeadHistory": ["Id", "LeadId", "CreatedById", "CreatedDate", "Field", "DataType", "OldValue", "NewValue", "IsDeleted"],
        "Opportunity": ["Id", "Name", "Account.Industry", "LeadSource", "Owner.Name", "Amount", "CreatedDate", "CloseDate", "IsWon",
                        "StageName", "Loss_Reason__c", "CurrencyIsoCode", "IsDeleted"],
        "OpportunityHistory": ["Id", "OpportunityId", "CreatedById", "CreatedDate", "StageName", "Amount", "ExpectedRevenue",
                               "CloseDate", "Probability", "ForecastCategory", "IsDeleted"],
        "Task": ["Id", "WhoId", "WhatId", "Subject", "Status", "IsClosed", "CreatedDate", "CompletedDateTime", "IsDeleted"],
        "Event": ["Id", "WhoId", "WhatId", "Subject", "StartDateTime", "IsDeleted"],
        "OpportunityContactRole": ["Id", "OpportunityId", "ContactId", "Role", "IsPrimary", "Contact.Title", "IsDeleted"],
    }

    def __init__(self, folder: Path) -> None:
        self.paths = {name: folder / f"{name}.csv" for name in self.HEADERS}
        self.out = {name: path.open("w", encoding="utf-8", newline="") for name, path in self.paths.items()}
        self.counts = dict.fromkeys(self.HEADERS, 0)
        for name, header in self.HEADERS.items():
            self.out[name].write(",".join(_csv(h) for h in header) + "\n")

    def write(self, name: str, values) -> None:
        self.out[name].write(_row(values))
        self.counts[name] += 1

    def close(self) -> None:
        for f in self.out.values():
            f.close()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _deal_path(rng: random.Random) -> list[int]:
    """The stage indexes an opportunity went through (mostly forward, some regressions, some still open)."""
    won, lost = 5, 6
    path = [0]
    while len(path) < 8 and path[-1] < won:
        r = rng.random()
        if r < 0.15:
            path.append(lost)
        elif r < 0.22 and path[-1] > 0:
            path.append(path[-1] - 1)
        elif r < 0.32:
            break
        else:
            path.append(min(path[-1] + rng.choice((1, 1, 2)), won))
    return path


def _opportunity(f: _Files, rng: random.Random, n: int, opp: str, at: datetime, source: str, industry: str, owner: str) -> None:
    """An Opportunity row, its history (moves and value-only changes) and its contact roles."""
    path = _deal_path(rng)
    amount = rng.randrange(5, 400) * 500
    close = (at + timedelta(days=rng.randrange(20, 120))).strftime("%Y-%m-%d")
    won, lost = path[-1] == 5, path[-1] == 6
    hist = f.counts["OpportunityHistory"]
    for i, stage in enumerate(path):
        rows = [(STAGES[stage], amount, close, rng.choice(FORECAST[:3]))]
        if rng.random() < 0.4:  # the amount or close date changed later in the stage
            amount = rng.randrange(5, 400) * 500 if rng.random() < 0.6 else amount
            close = (at + timedelta(days=rng.randrange(20, 150))).strftime("%Y-%m-%d")
            rows.append((STAGES[stage], amount, close, rng.choice(FORECAST)))
        if rng.random() < 0.15:  # only the probability changed: not read
            rows.append(rows[-1])
        for stage_name, amt, cd, fc in rows:
            hist += 1
            at += timedelta(hours=rng.randrange(1, 300), seconds=rng.randrange(3600), milliseconds=rng.randrange(1000))
            oid = opp if rng.random() > 0.1 else opp[:15]
            if rng.random() < 0.0003:
                oid = ""
            deleted = "true" if rng.random() < 0.002 else "false"
            values = [sf_id("008", hist), oid, "0055g00000Ua1BcAAJ", _bad(rng, _stamp(at), at), stage_name, str(amt),
                      str(amt // 10), cd, str(10 * (stage + 1)), fc, deleted]
            f.write("OpportunityHistory", values)
            if rng.random() < 0.001:
                f.write("OpportunityHistory", values)  # the same row twice: a repeated Id
    f.write("Opportunity", [opp, f"Account {n % 9973} - {rng.choice(('Voice', 'Chat, EMEA', 'Back Office'))}", industry, source,
                            owner, str(amount), _stamp(at), close, "true" if won else "false", STAGES[path[-1]],
                            rng.choice(LOSS) if lost else "", rng.choice(("USD", "EUR", "GBP")), "false"])
    for k in range(rng.randrange(0, 4)):
        f.write("OpportunityContactRole", [sf_id("00K", f.counts["OpportunityContactRole"] + 1), opp if k % 2 else opp[:15],
                                           sf_id("003", rng.randrange(1, 10**6)), rng.choice(ROLES), "true" if k == 0 else "false",
                                           rng.choice(TITLES), "false"])


def write_objects(folder: Path, rows: int, rng: random.Random) -> list[Path]:
    """The object exports, about `rows` rows in all; returns their paths."""
    f = _Files(folder)
    lead = own_opp = 0
    try:
        while f.total < rows:
            lead += 1
            lid = sf_id("00Q", lead)
            at = START + timedelta(days=rng.randrange(900), seconds=rng.randrange(86400), milliseconds=rng.randrange(1000))
            created = at
            source, industry, owner = rng.choice(SOURCES), rng.choice(INDUSTRIES), rng.choice(OWNERS)
            # LeadHistory: the created row, Status changes and other fields
            statuses = [LEAD_STATUSES[0]]
            for _ in range(rng.randrange(0, 4)):
                statuses.append(rng.choice(LEAD_STATUSES[1:]))
            converted = rng.random() < 0.35
            disqualified = not converted and rng.random() < 0.4
            if converted:
                statuses.append("Closed - Converted")
            elif disqualified:
                statuses.append("Closed - Not Converted")
            hist = f.counts["LeadHistory"]
            history = [("created", "", "", at)]
            t = at
            for old, new in zip(statuses, statuses[1:]):
                t += timedelta(hours=rng.randrange(1, 200), seconds=rng.randrange(3600), milliseconds=rng.randrange(1000))
                history.append(("Status", old, new, t))
            for _ in range(rng.randrange(2, 6)):
                field = rng.choice(OTHER_FIELDS)
                history.append((field, f"old {field.lower()}", f"new, {field.lower()}", at + timedelta(hours=rng.randrange(1, 500))))
            history.sort(key=lambda h: h[3])
            for field, old, new, when in history:
                hist += 1
                leadid = lid if rng.random() > 0.05 else lid[:15]
                if rng.random() < 0.0003:
                    leadid = ""
                deleted = "true" if rng.random() < 0.001 else "false"
                f.write("LeadHistory", [sf_id("017", hist), leadid, "0055g00000Ua1BcAAJ", _bad(rng, _stamp(when), when), field,
                                        "Text", old, new, deleted])
            opp = contact = ""
            if converted:
                opp, contact = sf_id("006", lead), sf_id("003", lead)
                _opportunity(f, rng, lead, opp, t, source, industry, owner)
            f.write("Lead", [lid if rng.random() > 0.0003 else "", f"Company {lead % 7919}", statuses[-1], source, industry, owner,
                             _bad(rng, _stamp(created), created), "true" if converted else "false",
                             t.strftime("%Y-%m-%d") if converted else "", opp if rng.random() > 0.2 else opp[:15], contact,
                             rng.choice(DISQUALIFIED) if disqualified else "", rng.choice(TITLES),
                             "true" if rng.random() < 0.001 else "false"])
            # activities: tasks against the lead (some open), against the contact; meetings
            for _ in range(rng.randrange(0, 3)):
                done = at + timedelta(hours=rng.randrange(1, 72), minutes=rng.randrange(60))
                closed = rng.random() < 0.7
                who = contact if contact and rng.random() < 0.3 else lid
                f.write("Task", [sf_id("00T", f.counts["Task"] + 1), who, opp if rng.random() < 0.2 else "", rng.choice(TASK_SUBJECTS),
                                 "Completed" if closed else "Not Started", "true" if closed else "false", _stamp(at),
                                 _stamp(done) if closed else "", "false"])
            if rng.random() < 0.2:
                meet = at + timedelta(days=rng.randrange(1, 10))
                f.write("Event", [sf_id("00U", f.counts["Event"] + 1), lid if rng.random() > 0.1 else sf_id("003", 10**7 + lead), "",
                                  "Discovery call", _stamp(meet), "false"])
            if rng.random() < 0.05:  # an opportunity no exported lead was converted into
                own_opp += 1
                _opportunity(f, rng, lead, sf_id("006", 10**7 + own_opp), at, source, industry, owner)
    finally:
        f.close()
    return list(f.paths.values())


def write_report(folder: Path, rows: int, rng: random.Random) -> list[Path]:
    """The Opportunity History report of `rows` rows (15-character ids, US dates, grouped amounts), with its footer."""
    path = folder / "OpportunityHistoryReport.csv"
    head = ["Opportunity Owner", "Opportunity Name", "Opportunity ID", "From Stage", "To Stage", "Amount", "Probability (%)",
            "Close Date", "Stage Duration", "Last Modified By", "Last Modified"]
    written = deal = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(_row(head))
        while written < rows:
            deal += 1
            opp = sf_id("006", deal)[:15]
            owner = rng.choice(OWNERS)
            at = START + timedelta(days=rng.randrange(900))
            previous = ""
            amount = rng.randrange(5, 400) * 500
            close = at + timedelta(days=rng.randrange(20, 120))
            for stage in _deal_path(rng):
                for repeat in range(1 + (rng.random() < 0.3)):
                    if written >= rows:
                        break
                    if repeat:
                        amount = rng.randrange(5, 400) * 500
                    at += timedelta(days=rng.randrange(0, 12))
                    stamp = at.strftime("%-m/%-d/%Y") if rng.random() > 0.0005 else at.strftime("%Y.%m.%d")
                    out.write(_row([owner, f"Account {deal % 9973} - Voice", opp if rng.random() > 0.0003 else "",
                                    previous if not repeat else STAGES[stage], STAGES[stage], f"{amount:,.2f}",
                                    str(10 * (stage + 1)), close.strftime("%-m/%-d/%Y"), str(rng.randrange(30)), owner, stamp]))
                    written += 1
                previous = STAGES[stage]
        out.write('"Grand Totals (' + f"{written:,}" + ' records)"\n\n"Confidential Information - Do Not Distribute"\n')
    return [path]


WRITERS = {"objects": write_objects, "report": write_report}


def write_exports(folder: Path, rows: int, shapes: list[str], seed: int) -> dict[str, list[Path]]:
    (folder / "funnel.toml").write_text(CONFIG)
    out = {}
    for shape in shapes:
        sub = folder / shape
        sub.mkdir()
        out[shape] = WRITERS[shape](sub, rows, random.Random(f"{seed}-{shape}"))
    return out


def time_translation(folder: Path, exports: list[Path], repeat: int) -> tuple[list[float], int, int]:
    """Seconds of each translation, the exports' source rows and the events made."""
    from funnelboard.core.config import load_config
    from funnelboard.etl.sources.registry import get_adapter

    config = load_config(folder / "funnel.toml")
    options = config.sources.get("salesforce", {})
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        t = get_adapter("salesforce")(exports, config, options)
        seconds.append(time.perf_counter() - started)
    return seconds, sum(t.source_rows.values()), t.events.num_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of each shape's exports (in all)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--shape", nargs="+", choices=sorted(WRITERS), default=["objects", "report"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="where the temp dir goes")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON (benchmarks.run reads it)")
    args = parser.parse_args(argv)
    figures: dict = {"shapes": {}}

    import funnelboard.etl.sources.salesforce as adapter

    folder = Path(tempfile.mkdtemp(prefix="fb-salesforce-", dir=args.workdir))
    try:
        print(f"adapter: {adapter.__file__}", flush=True)
        started = time.perf_counter()
        exports = write_exports(folder, args.rows, args.shape, args.seed)
        print(f"wrote {sum(p.stat().st_size for ps in exports.values() for p in ps) / 1e6:,.0f} MB "
              f"in {time.perf_counter() - started:.1f} s", flush=True)
        for shape, paths in exports.items():
            seconds, rows, events = time_translation(folder, paths, args.repeat)
            med = statistics.median(seconds)
            figures["shapes"][shape] = {"rows": rows, "events": events, "seconds": med, "runs": seconds}
            print(f"{shape}: {rows:,} rows -> {events:,} events; translation {med:.2f} s median of "
                  f"{', '.join(f'{s:.2f}' for s in seconds)}: {rows / med:,.0f} rows/s", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
