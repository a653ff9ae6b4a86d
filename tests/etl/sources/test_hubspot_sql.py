"""The HubSpot adapter's DuckDB translation equals the row-by-row reference (tests/oracle/oracle_hubspot.py).

Hypothesis writes random HubSpot exports in every shape the adapter reads (long property history
CSV/TSV, v3 and legacy v1 JSON of deals and contacts, the wide deal export with hs_v2_date_entered_*,
hs_date_entered_* and 'Date entered "..."' columns, pipelines, associations as JSON, pairs and an
export column) with the values exports hold (stage ids of the default pipeline, of a custom
pipeline and of none, ISO timestamps with and without offsets and fractions, epoch milliseconds,
bad and impossible timestamps, money properties, buyer properties, quoted values, blank lines,
broken rows) and checks that both translations give the same events, rejections, ignored counts,
source rows and notes.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.sources.hubspot import translate
from tests.oracle.oracle_hubspot import translate as reference

LABELS = """
[labels]
"Subscriber" = "lead"
"New" = "lead"
"Marketing Qualified Lead" = "mql"
"Sales Qualified Lead" = "sql"
"Customer" = "won"
"Unqualified" = "disqualified"
"Bad Timing" = "nurture"
"Appointment Scheduled" = "sql"
"Qualified To Buy" = "opportunity"
"Contract Sent" = "proposal"
"Closed Won" = "won"
"Closed Lost" = "lost"
"Discovery" = "sql"
"Scoping" = "opportunity"
"""
QUALIFIED = '"Proposal (BPO Outsourcing)" = "proposal"\n"Closed Lost (BPO Outsourcing)" = "lost"\n'
ZONES = ("UTC", "Europe/Berlin", "America/New_York")

PIPELINES = {"results": [
    {"id": "default", "label": "Sales Pipeline", "stages": [
        {"id": "appointmentscheduled", "label": "Appointment Scheduled"}, {"id": "qualifiedtobuy", "label": "Qualified To Buy"},
        {"id": "contractsent", "label": "Contract Sent"}, {"id": "closedwon", "label": "Closed Won"},
        {"id": "closedlost", "label": "Closed Lost"}]},
    {"id": "79104512", "label": "BPO Outsourcing", "stages": [
        {"id": "152118301", "label": "Discovery"}, {"id": "152118302", "label": "Scoping"}, {"id": "152118303", "label": "Proposal"},
        {"id": "152118305", "label": "Closed Lost"}]},
]}
LEGACY_PIPELINES = [{"pipelineId": "79104512", "label": "BPO Outsourcing",
                     "stages": [{"stageId": "152118301", "label": "Discovery"}, {"stageId": "152118399", "label": "Scoping"}]}]

DEAL_IDS = ("9001", "9002", "9003", "601", " 9004 ")
CONTACT_IDS = ("601", "602", "603", "9001")
DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "contractsent", "closedwon", "closedlost",
               "152118301", "152118302", "152118303", "152118305", "152118399", "Discovery", " closedwon ", "", "Scoping")
LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "SalesQualifiedLead", "customer", "other", "12345", "", "opportunity")
LEAD_STATUS = ("NEW", "unqualified", "BAD_TIMING", "CONNECTED", "Open Deal")
REASONS = ("Pricing too high", "No budget, maybe later", 'said "no"', "", "  Timing ", "line one\nline two")
AMOUNTS = ("48000", "EUR 52,000.00", "1.200,50", "abc", "", "52000.5", "$1,000", "48000")
CURRENCIES = ("eur", "USD", "", "gbp")
FORECAST = ("COMMIT", "best_case", "", "PIPELINE")
OWNERS = ("4101", "4102", "", "Dana Whitfield")
PIPELINE_IDS = ("default", "79104512", "other", "")
TITLES = ("Head of Operations", "CFO", "intern", "", "Procurement lead")
BUYING_ROLES = ("DECISION_MAKER", "END_USER;BUDGET_HOLDER", "", "influencer")
BAD_STAMPS = ("04/03/2026 10:15", "2026-02-30T10:00:00Z", "2026-03-01T24:00", "yesterday", "999999999999999", "2026-03-01T10:00+24:00",
              "0000-01-01", "2026-13-01", "1e12", "-")

DEAL_PROPS = {"dealstage": DEAL_STAGES, "closed_lost_reason": REASONS, "amount": AMOUNTS, "closedate": (),
              "deal_currency_code": CURRENCIES, "hs_manual_forecast_category": FORECAST, "hs_forecast_category": FORECAST,
              "hubspot_owner_id": OWNERS, "pipeline": PIPELINE_IDS, "dealtype": ("newbusiness", ""), "dealname": ("Acme, 40 seats", "x"),
              "hs_lastmodifieddate": ("1",)}
CONTACT_PROPS = {"lifecyclestage": LIFECYCLE, "hs_lead_status": LEAD_STATUS, "hs_lead_disqualification_reason": REASONS,
                 "hs_analytics_source": ("ORGANIC_SEARCH", "REFERRALS", ""), "hubspot_owner_id": OWNERS, "jobtitle": TITLES,
                 "hs_buying_role": BUYING_ROLES, "hs_first_outreach_date": (), "hs_sa_first_engagement_date": (), "email": ("a@b.c",)}

START = datetime(2026, 3, 1, 8, tzinfo=timezone.utc)


@st.composite
def instants(draw) -> datetime:
    """Instants on a coarse grid (so ties happen), 08:00-20:00 UTC: far from any DST change of ZONES."""
    return START + timedelta(days=draw(st.integers(0, 40)), hours=draw(st.sampled_from((0, 3, 6, 12))),
                             minutes=draw(st.sampled_from((0, 0, 30))), milliseconds=draw(st.sampled_from((0, 0, 250))))


@st.composite
def stamps(draw, epoch_int: bool = False) -> object:
    """A timestamp as exports write it: ISO in its forms, epoch milliseconds, or something bad."""
    at = draw(instants())
    kind = draw(st.sampled_from(("iso_ms", "iso_ms", "epoch", "epoch", "naive", "offset", "date", "frac", "bad", "space")))
    if kind == "iso_ms":
        return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    if kind == "epoch":
        ms = int(at.timestamp() * 1000)
        return ms if epoch_int and draw(st.booleans()) else str(ms)
    if kind == "naive":
        return at.strftime(draw(st.sampled_from(("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"))))
    if kind == "offset":
        off = draw(st.sampled_from(("+01:00", "+0530", "-05", "z", " Z", "-00:00", "+05:75")))
        return at.strftime("%Y-%m-%dT%H:%M") + off
    if kind == "date":
        return at.strftime("%Y-%m-%d")
    if kind == "frac":
        return at.strftime("%Y-%m-%d %H:%M:%S.") + draw(st.sampled_from(("5", "123456", "1234567", "999999999")))
    if kind == "space":
        return "  " + at.strftime("%Y-%m-%dT%H:%M:%SZ") + " "
    return draw(st.sampled_from(BAD_STAMPS + (None,) if epoch_int else BAD_STAMPS))


def value_for(draw, prop: str) -> str:
    pool = DEAL_PROPS.get(prop) or CONTACT_PROPS.get(prop) or ()
    if prop in ("closedate", "hs_first_outreach_date", "hs_sa_first_engagement_date"):
        v = draw(stamps())
        return "" if v is None else str(v)
    return draw(st.sampled_from(pool))


@st.composite
def history_rows(draw) -> list[tuple[str, str, str, str]]:
    """(object id, property, value, timestamp) rows of a long property history."""
    rows = []
    for _ in range(draw(st.integers(1, 25))):
        if draw(st.booleans()):
            oid, props = draw(st.sampled_from(DEAL_IDS)), DEAL_PROPS
        else:
            oid, props = draw(st.sampled_from(CONTACT_IDS)), CONTACT_PROPS
        stage = "dealstage" if props is DEAL_PROPS else "lifecyclestage"
        prop = draw(st.sampled_from((stage, stage, stage, "amount", "closedate", *sorted(props))))
        stamp = draw(stamps())
        rows.append((draw(st.sampled_from((oid,) * 9 + ("",))), prop, value_for(draw, prop), "" if stamp is None else str(stamp)))
    return rows


def csv_cell(value: str, quote_all: bool, delimiter: str) -> str:
    if quote_all or any(c in value for c in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def history_csv(draw) -> tuple[str, bytes]:
    rows = draw(history_rows())
    tsv = draw(st.integers(0, 7)) == 0
    delimiter = "\t" if tsv else ","
    id_col = draw(st.sampled_from(("objectId", "objectId", "hs_object_id", "dealId", "contactId", "vid")))
    type_col = draw(st.sampled_from((None, None, "objectType", "objectTypeId")))
    header = [id_col, "property", "value", "timestamp", "sourceType"]
    if type_col:
        header.insert(1, type_col)
    if draw(st.booleans()):
        header = [header[0], header[2], *header[1:2], *header[3:]] if not type_col else header
    quote_all = draw(st.integers(0, 3)) == 0
    newline = "\r\n" if draw(st.integers(0, 4)) == 0 else "\n"
    lines = [delimiter.join(csv_cell(h, quote_all, delimiter) for h in header)]
    for oid, prop, value, stamp in rows:
        kind = "deal" if prop in DEAL_PROPS and prop not in CONTACT_PROPS else "contact"
        cells = {id_col: oid, "property": prop, "value": value, "timestamp": stamp, "sourceType": "CRM_UI",
                 type_col: draw(st.sampled_from((kind, "0-3" if kind == "deal" else "0-1", "", "company")))}
        line = delimiter.join(csv_cell(cells[h], quote_all, delimiter) for h in header)
        trouble = draw(st.integers(0, 30))
        if trouble == 0:
            line += delimiter + "extra"  # wrong column count
        elif trouble == 1:
            lines.append("")  # a blank line
        elif trouble == 2:
            line = line.replace(delimiter, delimiter + '"x"y', 1)  # a quote in the middle: malformed
        elif trouble == 3:
            line = '"' + line  # a quote left open: runs on
        elif trouble == 4:
            lines.append("   ")
        lines.append(line)
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    data = ("\ufeff" if draw(st.integers(0, 9)) == 0 else "") + text
    return ("history.tsv" if tsv else "history.csv"), data.encode("utf-8")


@st.composite
def wide_csv(draw) -> tuple[str, bytes]:
    style = draw(st.sampled_from(("v2", "v1", "ui")))
    stage_ids = draw(st.lists(st.sampled_from(("appointmentscheduled", "qualifiedtobuy", "closedwon", "closedlost", "152118301",
                                               "152118303", "152118399", "current_stage")), min_size=1, max_size=5, unique=True))
    if style == "ui":
        names = draw(st.lists(st.sampled_from(("Appointment Scheduled (Sales Pipeline)", "Closed Lost (Sales Pipeline)",
                                               "Proposal (BPO Outsourcing)", "Closed Lost (BPO Outsourcing)", "Contract Sent",
                                               "Discovery (BPO Outsourcing)")), min_size=1, max_size=4, unique=True))
        stage_cols = [f'Date entered "{n}"' for n in names] + ['Date exited "Contract Sent"']
    else:
        prefix = "hs_v2_date_entered_" if style == "v2" else "hs_date_entered_"
        stage_cols = [prefix + s for s in stage_ids]
    id_col = draw(st.sampled_from(("Record ID", "hs_object_id", "Deal ID")))
    optional = draw(st.lists(st.sampled_from(("closed_lost_reason", "Closed Lost Reason", "Deal owner", "hubspot_owner_id",
                                              "Amount", "pipeline", "Associated Contact IDs", "dealname")), unique=True))
    header = [id_col, *optional, *stage_cols]
    quote_all = style == "ui" or draw(st.booleans())
    lines = [",".join(csv_cell(h, quote_all, ",") for h in header)]
    for _ in range(draw(st.integers(1, 8))):
        cells = []
        for h in header:
            if h == id_col:
                cells.append(draw(st.sampled_from(DEAL_IDS * 3 + ("",))))
            elif h in stage_cols:
                stamp = draw(st.one_of(st.just(""), st.just(""), stamps()))
                cells.append("" if stamp is None else str(stamp))
            elif h == "Associated Contact IDs":
                cells.append(draw(st.sampled_from(("601", "601;603", "699, 602", "", "603;601;603"))))
            elif h in ("closed_lost_reason", "Closed Lost Reason"):
                cells.append(draw(st.sampled_from(REASONS)))
            elif h == "pipeline":
                cells.append(draw(st.sampled_from(PIPELINE_IDS)))
            else:
                cells.append(draw(st.sampled_from(("4101", "Dana Whitfield", "52000", "", "a, b"))))
        lines.append(",".join(csv_cell(c, quote_all, ",") for c in cells))
        if draw(st.integers(0, 12)) == 0:
            lines.append(",".join(["x"] * (len(header) + 1)))
    return "deals_export.csv", ("\n".join(lines) + "\n").encode("utf-8")


@st.composite
def versions(draw, prop: str, legacy: bool) -> list[dict]:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        v: dict = {"value": value_for(draw, prop), "timestamp": draw(stamps(epoch_int=True))}
        if legacy:
            v["source-type"] = "CRM_UI"
        else:
            v["sourceType"] = "CRM_UI"
        if draw(st.integers(0, 15)) == 0:
            v["value"] = None
        if draw(st.integers(0, 15)) == 0:
            v.pop("timestamp")
        out.append(v)
    return out


@st.composite
def json_objects(draw) -> tuple[str, bytes]:
    legacy = draw(st.integers(0, 3)) == 0
    objects = []
    for _ in range(draw(st.integers(1, 5))):
        deal = draw(st.booleans())
        props = DEAL_PROPS if deal else CONTACT_PROPS
        stage = "dealstage" if deal else "lifecyclestage"
        names = draw(st.lists(st.sampled_from((stage, stage, stage, *sorted(props))), max_size=6, unique=True))
        oid = draw(st.sampled_from(DEAL_IDS if deal else CONTACT_IDS))
        if legacy:
            properties = {}
            for n in names:
                vs = draw(versions(n, True))
                entry: dict = {"versions": vs}
                if draw(st.booleans()):
                    entry["value"] = vs[0]["value"] if vs else value_for(draw, n)
                properties[n] = entry
            obj: dict = {"dealId" if deal else "vid": int(oid) if draw(st.booleans()) else oid, "properties": properties}
            if deal and draw(st.booleans()):
                obj["associations"] = {"associatedVids": draw(st.lists(st.sampled_from((601, 602, 603, 699)), max_size=3))}
        else:
            history = {n: draw(versions(n, False)) for n in names if draw(st.integers(0, 4))}
            current = {n: value_for(draw, n) for n in names if draw(st.booleans())}
            obj = {"id": oid, "properties": current, "propertiesWithHistory": history}
            if draw(st.booleans()):
                other = "contacts" if deal else "deals"
                ids = draw(st.lists(st.sampled_from(CONTACT_IDS if deal else DEAL_IDS), max_size=3))
                obj["associations"] = {other: {"results": [{"id": i, "type": f"{'deal_to_contact' if deal else 'contact_to_deal'}"}
                                                           for i in ids]}}
        trouble = draw(st.integers(0, 20))
        if trouble == 0:
            obj.pop("id", None)
            obj.pop("dealId", None)
            obj.pop("vid", None)
        elif trouble == 1:
            obj["archived"] = True
        objects.append(obj)
    if legacy:
        doc: object = {"deals" if draw(st.booleans()) else "contacts": objects, "hasMore": False}
    else:
        shape = draw(st.sampled_from(("page", "pages", "list")))
        doc = {"results": objects} if shape == "page" else [{"results": objects[:2]}, {"results": objects[2:]}] if shape == "pages" else objects
    name = "objects.json.gz" if draw(st.integers(0, 6)) == 0 else "objects.json"
    data = json.dumps(doc, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from((None, 1)))).encode("utf-8")
    return name, gzip.compress(data) if name.endswith(".gz") else data


@st.composite
def associations(draw) -> tuple[str, bytes]:
    if draw(st.booleans()):
        items = [{"from": {"id": draw(st.sampled_from(DEAL_IDS)).strip()},
                  "to": [{"toObjectId": int(c), "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 3}]}
                         for c in draw(st.lists(st.sampled_from(("601", "602", "603", "9001")), min_size=1, max_size=3))]}
                 for _ in range(draw(st.integers(1, 4)))]
        return "associations.json", json.dumps({"results": items, "status": "COMPLETE"}).encode()
    rows = ["dealId,contactId"] + [f"{draw(st.sampled_from(DEAL_IDS + ('',)))},{draw(st.sampled_from(CONTACT_IDS + ('',)))}"
                                   for _ in range(draw(st.integers(1, 5)))]
    return "pairs.csv", ("\n".join(rows) + "\n").encode()


@st.composite
def exports(draw) -> tuple[list[tuple[str, bytes]], dict, str]:
    """Files (name, bytes) in command order, the [source.hubspot] options, the funnel.toml text."""
    files = draw(st.lists(st.one_of(history_csv(), history_csv(), wide_csv(), json_objects(), json_objects(), associations()),
                          min_size=1, max_size=4))
    pipelines = draw(st.sampled_from(("none", "v3", "v3", "legacy")))
    if pipelines != "none":
        doc = PIPELINES if pipelines == "v3" else LEGACY_PIPELINES
        files.insert(draw(st.integers(0, len(files))), ("pipelines.json", json.dumps(doc).encode()))
    options: dict = {}
    if draw(st.integers(0, 4)) == 0:
        options["stage_labels"] = {"152118399": "Scoping", "12345": "Subscriber"}
    if draw(st.integers(0, 5)) == 0:
        options["attributes"] = {"owner": ["hubspot_owner_id", "Deal owner"], "deal_name": "dealname", "amount": ["amount", "Amount"]}
    if draw(st.integers(0, 6)) == 0:
        options["first_response_properties"] = ["hs_sa_first_engagement_date"]
    if draw(st.integers(0, 6)) == 0:
        options["reason_properties"] = ["closed_lost_reason"]
    toml = f'[funnel]\ntimezone = "{draw(st.sampled_from(ZONES))}"\n' + LABELS + (QUALIFIED if draw(st.booleans()) else "")
    return files, options, toml


def outcome(fn, paths, config, options):
    """A translation as plain, sorted rows, or the UserError's sentence."""
    try:
        t = fn(paths, config, options)
    except UserError as exc:
        return ("error", str(exc))
    rows = t.events.to_pylist()
    return {
        "columns": t.events.column_names,
        "events": sorted(rows, key=lambda r: json.dumps(r, sort_keys=True)),
        "rejected": sorted((r.file, r.line or 0, r.reason, r.detail, r.raw or "", r.lead_id or "") for r in t.rejected),
        "ignored": t.ignored,
        "source_rows": t.source_rows,
        "notes": t.notes,
        "leads": None if t.leads is None else t.leads.to_pylist(),
    }


def check(files, options, toml):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = load_config(_write(folder / "funnel.toml", toml.encode()))
        paths = []
        for i, (name, data) in enumerate(files):
            paths.append(_write(folder / f"{i}_{name}", data))
        want = outcome(reference, paths, config, options)
        got = outcome(translate, paths, config, options)
        if isinstance(want, dict) and isinstance(got, dict):
            for key in want:
                assert got[key] == want[key], key
        assert got == want


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(exports())
def test_translation_equals_the_row_by_row_reference(case):
    check(*case)


FIXTURES = Path(__file__).parents[2] / "fixtures" / "hubspot"


@pytest.mark.parametrize("names", [
    ("pipelines.json", "deal_property_history.csv"), ("pipelines.json", "deals_v3.json", "deals_export.csv"),
    ("contacts_v1.json",), ("pipelines.json", "deals_api_wide.csv"), ("contacts_v3.json", "deals_v3_associations.json"),
    ("pipelines.json", "deals_v3.json", "contacts_v3.json", "deal_contact_associations_v4.json"),
    ("pipelines.json", "deals_v3.json", "contacts_v3.json", "deal_contact_pairs.csv"),
    ("contacts_v3.json", "deals_export_contacts.csv"), ("deals_export.csv", "contacts_v1.json"), ("property_history_mixed.csv",),
    ("contacts_v3_buyers.json", "deals_v3_buyers.json"), ("contact_property_history_buyers.csv",), ("deal_money_history.csv",),
    ("deals_v3_money.json",),
])
@pytest.mark.slow
def test_fixtures_translate_as_the_reference_does(names):
    files = [(n, (FIXTURES / n).read_bytes()) for n in names]
    check(files, {}, LABELS)
