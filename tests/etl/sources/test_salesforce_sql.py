"""The Salesforce adapter (its reading and LeadHistory in DuckDB) equals the row-by-row reference
(tests/oracle/oracle_salesforce.py).

On every fixture of tests/etl/sources/test_salesforce.py, on the benchmark's generator at a small
size, and on hypothesis-written exports (Lead, LeadHistory, Opportunity, OpportunityHistory, Task)
with hostile values: quotes, commas and line breaks inside values, CRLF line ends, empty ids,
15-character and case-mangled ids, bad and impossible timestamps, repeated history ids, deleted
rows, fields in any case, and broken rows. Both translations must give the same events and leads
(as sets of rows: the load does not read their order), rejections (as a set), ignored counts,
source rows and notes.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.adapter_salesforce import sf_id, write_exports
from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.sources.salesforce import translate
from tests.oracle.oracle_salesforce import translate as reference

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "salesforce"
ACTIVITIES = FIXTURES / "activities"
EXAMPLE_CONFIG = ROOT / "examples" / "salesforce" / "funnel.toml"
OBJECTS = [FIXTURES / n for n in ("OpportunityHistory.csv", "Opportunity.csv", "Lead.csv", "LeadHistory.csv")]


def table_rows(table) -> list[tuple] | None:
    if table is None:
        return None
    rows = sorted((tuple(str(v) for v in row.values()) for row in table.to_pylist()), key=repr)
    return [tuple(table.column_names), *rows]


def assert_same(paths: list[Path], config, options: dict) -> None:
    try:
        want = reference(paths, config, options)
    except UserError as exc:
        with pytest.raises(UserError) as got:
            translate(paths, config, options)
        assert str(got.value) == str(exc)
        return
    got = translate(paths, config, options)
    assert table_rows(got.events) == table_rows(want.events)
    assert table_rows(got.leads) == table_rows(want.leads)
    assert sorted(got.rejected, key=repr) == sorted(want.rejected, key=repr)
    assert got.ignored == want.ignored
    assert got.source_rows == want.source_rows
    assert got.notes == want.notes


FIXTURE_SETS = [
    OBJECTS,
    OBJECTS[::-1],
    [FIXTURES / "OpportunityHistory.csv"],
    [FIXTURES / "OpportunityHistory.csv", FIXTURES / "Opportunity.csv"],
    [FIXTURES / "Lead.csv"],
    [FIXTURES / "Lead.csv", FIXTURES / "LeadHistory.csv"],
    [FIXTURES / "LeadHistory.csv"],
    [FIXTURES / "LeadHistory.csv", FIXTURES / "OpportunityHistory.csv"],
    [FIXTURES / "OpportunityHistoryReport.csv"],
    [FIXTURES / "OpportunityHistoryReport_currencies.csv"],
    [FIXTURES / "OpportunityHistoryReport_totals.csv"],
    [FIXTURES / "OpportunityHistory_no_CreatedDate.csv"],
    [FIXTURES / "Account.csv"],
    [FIXTURES / "deleted_lead" / "Lead.csv", FIXTURES / "deleted_lead" / "LeadHistory.csv"],
    [FIXTURES / "OpportunityHistory.csv", FIXTURES / "Opportunity.csv", ACTIVITIES / "Lead.csv", FIXTURES / "LeadHistory.csv",
     ACTIVITIES / "Task.csv", ACTIVITIES / "OpportunityContactRole.csv", ACTIVITIES / "Event.csv"],
    [ACTIVITIES / "Task.csv", ACTIVITIES / "OpportunityContactRole.csv"],
    [FIXTURES / "OpportunityHistory.csv", ACTIVITIES / "Task.csv", ACTIVITIES / "Event.csv"],
]


@pytest.mark.slow
@pytest.mark.parametrize("paths", FIXTURE_SETS, ids=lambda ps: "+".join(f"{p.parent.name}/{p.name}" for p in ps))
@pytest.mark.parametrize("options", [None, {"first_response_field": "First_Response__c", "decision_roles": ["Evaluator"]}])
def test_fixtures_translate_as_the_reference(paths, options):
    config = load_config(EXAMPLE_CONFIG)
    opts = dict(config.sources.get("salesforce", {}))
    if options and any(p.parent == ACTIVITIES and p.name == "Lead.csv" for p in paths):
        opts.update(options)
    assert_same(paths, config, opts)


@pytest.mark.slow
def test_the_benchmark_exports_translate_as_the_reference(tmp_path):
    exports = write_exports(tmp_path, 6000, ["objects", "report"], 11)
    config = load_config(tmp_path / "funnel.toml")
    for paths in exports.values():
        assert_same(paths, config, config.sources["salesforce"])


# -- hypothesis: hostile exports ------------------------------------------------------------------

LEADS = [sf_id("00Q", n) for n in (1, 2, 3, 77, 3844)]
OPPS = [sf_id("006", n) for n in (1, 2, 3, 9)]
STATUSES = ("Open - Not Contacted", "Working - Contacted", "MQL", "SQL", "Closed - Converted", "Closed - Not Converted", "Nurture",
            "", "  MQL ", "Unknown")
STAGES = ("Prospecting", "Qualification", "Proposal/Price Quote", "Closed Won", "Closed Lost", "", "closed lost")
FIELDS = ("Status", "status", "STATUS", "created", "Rating", "Owner", "Email", "", "Statu\u017f", "Stat\u00fcs", " Status ")
STAMPS = ("2026-03-02T09:14:00.000+0000", "2026-03-02T09:14:00.000Z", "2026-03-02T10:14:00+01:00", "2026-03-05 08:00",
          "2026-03-05", "2026-03-02T09:14:00.000+0000", "2026-02-30T10:00:00Z", "03/02/2026 09:14", "", "2026-03-09T23:59:59.999999999Z",
          "  2026-03-03T12:00:00Z  ", "2026-03-29T02:30:00", "2026-02-30T10:00:00.000+0000", "2026-03-02T09:30:00.000Z",
          "2026-03-02T10:14:00.500+00:00", "2026-03-02T09:14:00.000+0100", "2026-03-02T09:14:00.900+0000", "2026-03-02T09:14:00.100Z")
REPORT_DATES = ("3/2/2026", "03/02/2026", "3/2/2026 10:15 AM", "3/2/2026 14:30", "3/4/2026", "2026-03-02", "", "13/45/2026",
                "2/29/2026", "3/4/2026 ")
TRUE = ("true", "false", "", "TRUE", " 1 ", "yes", "no")
TEXT = ("Web", 'say "hi"', "a, b", "line\nbreak", "", "  spaced  ", "crlf\r\nvalue", "Économie")


def _ids(pool):
    def variants(i):
        return st.sampled_from((i, i[:15], i.lower(), i.upper(), i[:15] + i[15:].lower(), f" {i} "))
    return st.one_of(st.sampled_from(pool).flatmap(variants), st.sampled_from(("", "  ", "not an id")))


def _csv(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\r\n ') else value


def _write(path: Path, header: list[str], rows: list[list[str]], crlf: bool, broken: bool) -> None:
    end = "\r\n" if crlf else "\n"
    lines = [",".join(_csv(h) for h in header)] + [",".join(_csv(v) for v in row) for row in rows]
    if broken and lines:
        lines.insert(len(lines) // 2 + 1, "a,b")  # a row with the wrong number of fields
    path.write_text(end.join(lines) + end, encoding="utf-8", newline="")


@st.composite
def exports(draw):
    s = st.sampled_from
    files = {}
    history_ids = s(("", "0175g0000Ak001AAAR", "0175g0000Ak002AAAR", "0175g0000Ak003AAAR"))
    if draw(st.booleans()):
        header = ["Id", "Company", "Status", "LeadSource", "CreatedDate", "IsConverted", "ConvertedDate", "ConvertedOpportunityId",
                  "Disqualification_Reason__c", "IsDeleted"]
        rows = [[draw(_ids(LEADS)), draw(s(TEXT)), draw(s(STATUSES)), draw(s(TEXT)), draw(s(STAMPS)), draw(s(TRUE)),
                 draw(s(("", "2026-03-12", "2026-03-10"))), draw(_ids(OPPS)), draw(s(TEXT)), draw(s(TRUE))]
                for _ in range(draw(st.integers(1, 8)))]
        files["Lead.csv"] = (header, rows)
    if True:  # the part read in DuckDB: always there
        header = draw(s((["Id", "LeadId", "CreatedDate", "Field", "OldValue", "NewValue", "IsDeleted"],
                         ["LEADID", "CREATEDDATE", "FIELD", "OLDVALUE", "NEWVALUE"])))
        rows = []
        for _ in range(draw(st.integers(1, 25))):
            values = {"id": draw(history_ids), "leadid": draw(_ids(LEADS)), "createddate": draw(s(STAMPS)), "field": draw(s(FIELDS)),
                      "oldvalue": draw(s(STATUSES)), "newvalue": draw(s(STATUSES)), "isdeleted": draw(s(TRUE))}
            rows.append([values[h.lower()] for h in header])
        if rows and draw(st.booleans()):
            rows.append(list(rows[0]))  # a duplicate row
        files["LeadHistory.csv"] = (header, rows)
    if draw(st.booleans()):
        header = ["Id", "OpportunityId", "CreatedDate", "StageName", "Amount", "CloseDate", "ForecastCategory", "IsDeleted"]
        rows = [[draw(s(("", "0085g00001Hx01AAAR", "0085g00001Hx02AAAR", "0085g00001Hx03AAAR"))), draw(_ids(OPPS)), draw(s(STAMPS)),
                 draw(s(STAGES)), draw(s(("48000", "52,000.00", "", "EUR 1.200,50"))), draw(s(("2026-05-01", "", "soon"))),
                 draw(s(("Pipeline", "Commit", ""))), draw(s(TRUE))] for _ in range(draw(st.integers(1, 12)))]
        files["OpportunityHistory.csv"] = (header, rows)
    if draw(st.booleans()):
        header = ["Id", "StageName", "LeadSource", "Amount", "CreatedDate", "IsWon", "Loss_Reason__c", "IsDeleted"]
        rows = [[draw(_ids(OPPS)), draw(s(STAGES)), draw(s(TEXT)), draw(s(("36000", "", "1,000"))), draw(s(STAMPS)), draw(s(TRUE)),
                 draw(s(TEXT)), draw(s(TRUE))] for _ in range(draw(st.integers(1, 5)))]
        files["Opportunity.csv"] = (header, rows)
    if draw(st.booleans()):
        header = ["Id", "WhoId", "WhatId", "Status", "IsClosed", "CreatedDate", "CompletedDateTime", "IsDeleted"]
        rows = [[draw(s(("", "00T5g0000A1", "00T5g0000A2"))), draw(_ids(LEADS)), draw(_ids(OPPS)), draw(s(("Completed", "Open", ""))),
                 draw(s(TRUE)), draw(s(STAMPS)), draw(s(STAMPS)), draw(s(TRUE))] for _ in range(draw(st.integers(1, 5)))]
        files["Task.csv"] = (header, rows)
    if draw(st.booleans()):
        header = ["Opportunity Owner", "Opportunity ID", "From Stage", "To Stage", "Amount", "Close Date", "Last Modified"]
        header += draw(s(([], ["Forecast Category", "Opportunity Currency"], ["Lead Source"])))
        rows = []
        for _ in range(draw(st.integers(1, 20))):
            odd = draw(st.integers(0, 9)) == 0  # now and then any value, else the few a deal's rows repeat
            row = [draw(s(TEXT)), draw(_ids(OPPS) if odd else s(OPPS[:2])), draw(s(STAGES if odd else ("Prospecting", "", "Closed Lost"))),
                   draw(s(STAGES if odd else ("Prospecting", "Closed Lost"))),
                   draw(s(("48,000.00", "EUR 52,000.00", "$1,000", "", "abc", "52000", "\u20ac1.200,50", "usd 10") if odd else
                          ("48,000.00", "52,000.00", ""))),
                   draw(s(REPORT_DATES if odd else ("5/1/2026", "6/1/2026", ""))),
                   draw(s(REPORT_DATES if odd else ("3/2/2026", "3/4/2026", "3/9/2026")))]
            row += [draw(s(("Pipeline", "", "Commit", "eur", "Gbp", "\u00df"))) for _ in header[7:]]
            rows.append(row)
        if draw(st.booleans()):
            rows.append(["Grand Totals (3 records)", *[""] * (len(header) - 1)])
        files["OpportunityHistoryReport.csv"] = (header, rows)
    return files, draw(st.booleans()), draw(st.booleans()), draw(s(("UTC", "Europe/Berlin", "America/New_York")))


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exports())
def test_hostile_exports_translate_as_the_reference(drawn):
    files, crlf, broken, zone = drawn
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = dataclasses.replace(load_config(EXAMPLE_CONFIG), timezone=zone)
        paths = []
        for name, (header, rows) in files.items():
            _write(folder / name, header, rows, crlf, broken and name == "LeadHistory.csv")
            paths.append(folder / name)
        random.Random(len(paths)).shuffle(paths)
        assert_same(paths, config, dict(config.sources.get("salesforce", {})))
