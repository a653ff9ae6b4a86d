"""Drafting a funnel.toml from an export (etl/draft.py, core/draft_toml.py): the heuristics case by case,
then whole exports in every format, and that every draft loads with load_config."""

from __future__ import annotations

import tomllib
from pathlib import Path

import duckdb
import pytest

from funnelboard.core.config import KeyRate, load_config
from funnelboard.core.draft_toml import Draft, DraftColumn, DraftLabel, render, write_draft
from funnelboard.core.errors import UserError
from funnelboard.etl.draft import date_formats, detect_delimiter, draft_config, exit_kind, order_names, stage_name
from tests.conftest import write

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "draft"


@pytest.mark.parametrize(("label", "outcome", "name"), [
    ("Closed Lost", "lost", "closed_lost"),
    ("Lost - went dark", "lost", "lost_went_dark"),
    ("Unqualified", "disqualified", "unqualified"),
    ("Disqualified ", "disqualified", "disqualified"),
    ("Junk", "disqualified", "junk"),
    ("Closed - Not Converted", "disqualified", "closed_not_converted"),
    ("Nurture", "nurture", "nurture"),
    ("Recycled", "nurture", "recycled"),
    ("Re-routed", "rerouted", "re_routed"),
    ("Closed - Converted", None, "closed_converted"),
    ("Marketing Qualified Lead", None, "mql"),
    ("sales  qualified", None, "sql"),
    ("Closed Won", None, "won"),
    ("Proposal/Price Quote", None, "proposal_price_quote"),
    ("Qualifié", None, "qualifie"),
    ("2nd call", None, "col_2nd_call"),
    ("???", None, "stage"),
])
def test_labels_get_an_exit_guess_and_a_canonical_name(label, outcome, name):
    assert exit_kind(label) == outcome
    assert stage_name(label) == name


@pytest.mark.parametrize(("names", "before", "median", "expected"), [
    # A plain funnel given in reverse: the votes order it.
    (["won", "sql", "mql", "lead"], {("lead", "mql"): 5, ("mql", "sql"): 4, ("sql", "won"): 2, ("lead", "sql"): 3,
                                     ("lead", "won"): 2, ("mql", "won"): 1}, {}, ["lead", "mql", "sql", "won"]),
    # A few leads moving back (sql before mql) are outvoted by the many.
    (["sql", "mql"], {("mql", "sql"): 9, ("sql", "mql"): 2}, {}, ["mql", "sql"]),
    # A stage seen with one other only: placed by the stages it shares leads with, not pushed to the middle.
    (["lead", "mql", "won", "evangelist"], {("lead", "mql"): 5, ("mql", "won"): 3, ("lead", "won"): 3, ("won", "evangelist"): 1},
     {}, ["lead", "mql", "won", "evangelist"]),
    # Stages that never meet: by median position, then as given.
    (["b", "a", "c"], {}, {"a": 0.1, "b": 0.9}, ["a", "c", "b"]),
    (["b", "a"], {("a", "b"): 2, ("b", "a"): 2}, {}, ["b", "a"]),
])
def test_order_names_follows_the_majority_of_journeys(names, before, median, expected):
    assert order_names(names, before, median) == expected


@pytest.mark.parametrize(("name", "header", "expected"), [
    ("comma.csv", "lead_id,stage,entered_at", ","),
    ("semi.csv", "lead_id;stage;entered_at", ";"),
    ("tab.csv", "lead_id\tstage\tentered_at", "\t"),
    ("quoted.csv", '"a,b";"c,d";"e"', ";"),
    ("one.csv", "lead_id", ","),
    ("events.tsv", "lead_id\tstage\tentered_at", None),
])
def test_the_delimiter_is_counted_in_the_header_line(tmp_path, name, header, expected):
    path = write(tmp_path / name, header + "\nx\n")
    delimiter, note = detect_delimiter([path])
    assert delimiter == expected
    assert (name in note) == (expected is not None)


def test_files_with_different_delimiters_are_refused(tmp_path):
    a = write(tmp_path / "a.csv", "lead_id,stage,entered_at\n")
    b = write(tmp_path / "b.csv", "lead_id;stage;entered_at\n")
    with pytest.raises(UserError, match="different delimiters"):
        detect_delimiter([a, b])


@pytest.mark.parametrize(("values", "formats", "note"), [
    (["2024-01-31", "2024-02-01 10:00:00"], (), "ISO-8601 already"),
    (["31/01/2024", "01/02/2024"], ("%d/%m/%Y",), "reads 2 of the 2"),
    (["01/31/2024", "02/01/2024"], ("%m/%d/%Y",), "reads 2 of the 2"),
    (["01/02/2024", "03/04/2024"], ("%d/%m/%Y",), "day/month chosen"),
    (["31.01.2024", "2024-02-01"], ("%Y-%m-%d", "%d.%m.%Y"), "reads 2 of the 2"),
    (["1706700000000", "1706786400000"], ("epoch_ms",), "epoch_ms"),
    (["31/01/2024", "31/02/2024"], ("%d/%m/%Y",), "1 read under no format (such as '31/02/2024')"),
])
def test_date_formats_read_the_most_dates(values, formats, note):
    found, text = date_formats(values)
    assert found == formats
    assert note in text


def _jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "crm.jsonl"
    con = duckdb.connect()
    con.execute("copy (select * from read_csv($src, all_varchar=true)) to '" + str(path) + "' (format json)",
                {"src": str(FIXTURES / "crm_export.csv")})
    return path


def _parquet(tmp_path: Path) -> Path:
    path = tmp_path / "crm.parquet"
    con = duckdb.connect()
    con.execute("copy (select * from read_csv($src, all_varchar=true)) to '" + str(path) + "' (format parquet)",
                {"src": str(FIXTURES / "crm_export.csv")})
    return path


CRM = {
    "stages": ("new", "mql", "sql", "proposal_sent", "won"),
    "outcomes": {"lost", "disqualified", "nurture"},
    "renames": {"stage": "Status", "entered_at": "Changed At", "reason": "Loss Reason"},
    "segments": ["channel", "owner"],
    "numeric": ("lead_score", "deal_value"),
}


@pytest.mark.parametrize(("make", "source", "expected"), [
    (lambda tmp: FIXTURES / "crm_export.csv", "canonical", {**CRM, "delimiter": ","}),
    (_parquet, "canonical", {**CRM, "delimiter": None}),
    (_jsonl, "canonical", {**CRM, "delimiter": None}),
    (lambda tmp: FIXTURES / "crm_semicolon.csv", "canonical", {
        "stages": ("lead", "demo", "offer", "signed"), "outcomes": {"lost"}, "delimiter": ";",
        "renames": {"lead_id": "Id", "entered_at": "Date"}, "segments": ["segment", "country"], "numeric": ()}),
    (lambda tmp: write(tmp / "events.tsv", "lead_id\tstage\tentered_at\tregion\nL1\tlead\t2024-01-01\tEU\n"
                       "L1\tmql\t2024-01-02\tEU\nL2\tlead\t2024-01-01\tUS\n"), "canonical", {
        "stages": ("lead", "mql"), "outcomes": set(), "delimiter": None, "renames": {}, "segments": ["region"], "numeric": ()}),
    (lambda tmp: FIXTURES / "deals_wide.csv", "wide", {
        "stages": ("created", "demo", "won"), "outcomes": {"lost"}, "delimiter": ",", "renames": {},
        "segments": ["source"], "numeric": ("deal_value",)}),
])
@pytest.mark.slow
def test_a_draft_of_each_kind_of_export(tmp_path, make, source, expected):
    draft = draft_config([make(tmp_path)], source)
    assert draft.stages == expected["stages"]
    assert set(draft.outcomes) == expected["outcomes"]
    assert draft.delimiter == expected["delimiter"]
    assert draft.renames == expected["renames"]
    assert {c.name for c in draft.segments} == set(expected["segments"])  # JSON Lines keys come sorted, as the load reads them
    assert set(draft.numeric) == set(expected["numeric"])
    out = tmp_path / "funnel.toml"
    write_draft(draft, out)
    config = load_config(out)
    assert config.stages == draft.stages
    mapping = config.label_map()
    assert all(mapping[lab.label.strip().lower()] == lab.name for lab in draft.labels)


def test_the_canonical_draft_says_what_it_found(tmp_path):
    draft = draft_config([FIXTURES / "crm_export.csv"])
    labels = {lab.label: (lab.name, lab.rows, lab.leads, lab.outcome) for lab in draft.labels}
    assert labels["New"] == ("new", 9, 9, False)  # "  NEW " is the same label
    assert labels["Junk"] == ("disqualified", 1, 1, True)
    assert labels["Unqualified"] == ("disqualified", 1, 1, True)
    assert draft.key_rate == KeyRate("mql", "sql", "SQL rate")
    assert draft.lost == ("lost",)
    assert (draft.score, draft.amount) == ("lead_score", "deal_value")
    kinds = {c.header: c.kind for c in draft.columns}
    assert kinds == {"Lead ID": "lead_id", "Status": "stage", "Changed At": "entered_at", "Loss Reason": "reason",
                     "Channel": "segment", "Owner": "segment", "Lead Score": "numeric", "Deal Value": "numeric", "Email": "text"}
    channel = next(c for c in draft.columns if c.name == "channel")
    assert channel.top[0] in (("inbound", 3), ("referral", 3)) and channel.distinct == 4
    assert draft.timezone_note == ""  # every timestamp ends in Z
    assert dict(draft.reasons)["no budget"] == 1


def test_the_wide_draft_maps_ids_dates_reasons_and_attributes():
    draft = draft_config([FIXTURES / "deals_wide.csv"], "wide")
    (table,) = draft.wide
    entries = {e.key: e.value for e in table.entries}
    assert entries == {"id": "Deal ID", "date_format": "%d/%m/%Y"}
    subs = {name: {e.key: e.value for e in lines} for name, lines in table.tables}
    assert subs["stages"] == {"created": "Created", "demo": "Demo date", "won": "Won date", "lost": "Lost date"}
    assert subs["reasons"] == {"lost": "Lost reason"}
    assert subs["attributes"] == {"source": "Source", "deal_value": "Deal value", "expected_close_date": "Expected close date"}
    assert any("Expected close date" in c and "Not stages" in c for c in table.comments)
    assert any("Notes" in c and "Not read" in c for c in table.comments)
    assert any("unparseable_timestamp 1" in n for n in draft.notes)  # 31/02/2024


def test_journey_order_comes_from_time_not_from_the_file(tmp_path):
    rows = ["L1,Won,2024-01-09", "L2,Won,2024-01-08", "L1,Demo,2024-01-05", "L2,Demo,2024-01-04", "L1,Lead,2024-01-01",
            "L2,Lead,2024-01-02", "L3,Demo,2024-01-03", "L3,Lead,2024-01-06"]  # L3 goes back: outvoted
    path = write(tmp_path / "e.csv", "lead_id,stage,entered_at\n" + "\n".join(rows) + "\n")
    assert draft_config([path]).stages == ("lead", "demo", "won")


def test_the_win_is_moved_last_and_said_so(tmp_path):
    rows = ["L1,Lead,2024-01-01", "L1,Won,2024-01-02", "L1,Onboarding,2024-01-03", "L2,Lead,2024-01-01", "L2,Demo,2024-01-02"]
    path = write(tmp_path / "e.csv", "lead_id,stage,entered_at\n" + "\n".join(rows) + "\n")
    draft = draft_config([path])
    assert draft.stages[-1] == "won"
    assert any("'won' looks like the win" in n and "onboarding" in n for n in draft.stage_notes)


def test_several_files_are_drafted_together(tmp_path):
    a = write(tmp_path / "a.csv", "Lead ID,Status,Changed At,channel\nL1,New,2024-01-01,web\nL1,Demo,2024-01-03,web\n")
    b = write(tmp_path / "b.csv", "lead id,STATUS,changed at,region\nL2,New,2024-01-02,EU\nL2,Won,2024-01-09,EU\n")
    draft = draft_config([a, b])
    assert draft.stages == ("new", "demo", "won")
    assert {c.name for c in draft.columns if c.kind not in ("lead_id", "stage", "entered_at")} == {"channel", "region"}


@pytest.mark.parametrize(("name", "text", "source", "message"), [
    ("missing.csv", None, "canonical", "does not exist"),
    ("e.xlsx", "x", "canonical", "cannot tell the format"),
    ("empty.csv", "", "canonical", "is empty"),
    ("two.csv", "a,b\n1,2\n", "canonical", "has 2 column(s) (a, b)"),
    ("nostage.csv", "id,channel,when\n1,x,2024-01-01\n", "canonical", "cannot tell which column holds the stage labels"),
    ("noid.csv", "who,stage,entered_at\n1,x,2024-01-01\n", "canonical", "cannot tell which column holds the lead id"),
    ("one.csv", "lead_id,stage,entered_at\nL1,New,2024-01-01\nL1,Lost,2024-01-02\n", "canonical", "fewer than two stages"),
    ("nodates.csv", "deal_id,channel\nD1,web\n", "wide", "no column of dates"),
    ("u16.csv", "\ufefflead_id,stage,entered_at\n", "canonical", "UTF-16"),
    ("e.csv", "lead_id,stage,entered_at\nL1,a,2024-01-01\n", "nope", "unknown --source 'nope'"),
])
def test_unreadable_exports_are_one_sentence(tmp_path, name, text, source, message):
    path = tmp_path / name
    if text is not None:
        write(path, text, encoding="utf-16" if name.startswith("u16") else "utf-8")
    with pytest.raises(UserError, match=None) as info:
        draft_config([path], source)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_rendered_draft_escapes_what_labels_and_values_hold(tmp_path):
    weird = ['Say "hi"', "back\\slash", "tab\there", "Ünïcode ✓", "line\nbreak"]
    labels = tuple(DraftLabel(text, f"s{i}", 1, 1) for i, text in enumerate(weird))
    column = DraftColumn("Chan # nel", "chan_nel", "segment", 2, 2, (('a"b', 1), ("c\nd", 1)))
    draft = Draft(inputs=("x.csv",), source="canonical", stages=tuple(f"s{i}" for i in range(len(weird))), outcomes=(),
                  labels=labels, columns=(column,), key_rate=KeyRate("s0", "s1", 'The "rate"'),
                  renames={"stage": 'St"atus'}, delimiter="\t", delimiter_note="tabs")
    text = render(draft)
    parsed = tomllib.loads(text)
    assert list(parsed["labels"]) == weird
    assert parsed["segments"] == {"chan_nel": "Chan # nel"}
    assert parsed["input"]["delimiter"] == "\t"
    assert parsed["columns"] == {"stage": 'St"atus'}
    write_draft(draft, tmp_path / "f.toml")
    assert load_config(tmp_path / "f.toml").review_rate.name == 'The "rate"'


def test_every_guess_is_marked_check():
    draft = draft_config([FIXTURES / "crm_export.csv"])
    lines = render(draft).splitlines()
    keyed = [line for line in lines if not line.startswith("#") and "=" in line]
    must = ("stages =", "outcomes =", "delimiter =", "stage =", "entered_at =", "reason =", "channel =",
            "owner =", "numeric =", "score =", "amount =", "key_rate =", "lost =", "Junk =", '"Closed Lost" =')
    for start in must:
        line = next(line for line in keyed if line.startswith(start))
        assert "# CHECK:" in line, line
    assert '"Marketing Qualified" = "mql"  # 9 rows, 7 leads' in lines  # not a guess: no CHECK
    assert any(line.startswith('# currency = "USD"') and "CHECK" in line for line in lines)  # never guessed, only offered
    assert "# CHECK:" not in next(line for line in keyed if line.startswith("timezone ="))  # every timestamp has its offset
    naive = render(draft_config([FIXTURES / "crm_semicolon.csv"])).splitlines()
    assert "# CHECK: 17 timestamps carry no offset" in next(line for line in naive if line.startswith("timezone ="))


def test_a_draft_that_would_not_load_is_not_written(tmp_path):
    bad = Draft(inputs=("x.csv",), source="canonical", stages=("a", "b"), outcomes=(), labels=(DraftLabel("A", "nope", 1, 1),),
                columns=(), key_rate=KeyRate("a", "b", "r"))
    with pytest.raises(RuntimeError, match="does not load"):
        write_draft(bad, tmp_path / "f.toml")
    assert list(tmp_path.iterdir()) == []


def test_the_drafted_sla_example_loads_once_uncommented(tmp_path):
    """The commented [sla] example of a draft is a working section for the draft's own stages."""
    from funnelboard.core.config import load_config
    from funnelboard.core.draft_toml import _sla_days

    class Draft:
        stages = ("new", "qualified", "won")

    example = [line[2:] if line.startswith(("# [sla]", "# clock", "# hours")) else line for line in _sla_days(Draft()).splitlines()]
    path = tmp_path / "funnel.toml"
    path.write_text('[funnel]\nstages = ["new", "qualified", "won"]\n' + "\n".join(example) + "\n", "utf-8")
    (sla,) = load_config(path).stage_slas
    assert (sla.stage, sla.clock, sla.hours) == ("qualified", "business", 16.0)
