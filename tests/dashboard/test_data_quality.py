"""The data-quality page, its callback called directly and its CSV exports through Dash: numbers equal the raw tables."""

from __future__ import annotations

import csv
import io
import json
import sys
from types import SimpleNamespace

import pytest

from funnelboard.core.config import load_config
from funnelboard.core.export import rows_to_csv
from funnelboard.etl.generate import generate
from funnelboard.warehouse.pipeline import load_files
from funnelboard.warehouse.status import warehouse_status
from tests.conftest import NOW, rows

# The outputs of data_quality.update, in order.
OUTPUTS = (
    "message", "body_hidden", "summary",
    "ledger", "ledger_count", "reasons", "reasons_count", "labels", "labels_count",
    "examples", "examples_count", "quarantine", "quarantine_count",
    "reasons_hidden", "rows_hidden", "clean", "labels_hidden", "labels_empty",
)
# Dirt kinds of etl.generate that end in the quarantine (messy labels map, duplicates collapse).
QUARANTINED_DIRT = ("unknown_stage", "unparseable_timestamp", "future_timestamp", "before_1990", "missing_lead_id", "wrong_column_count")


def quality_page():
    """The page module as the app loaded it (Dash imports it as `pages.data_quality`; importing
    `dashboard.pages.data_quality` too would register the path twice)."""
    import dash

    module = next(p["module"] for p in dash.page_registry.values() if p["path"] == "/data-quality")
    return sys.modules[module]


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    """A dirty CSV, and a dirty JSON Lines file loaded, then loaded again with --replace (one superseded file)."""
    folder = tmp_path_factory.mktemp("quality")
    config = load_config(None)
    events = generate(out=folder / "events.csv", n_leads=2500, seed=9, dirty=True)
    more = generate(out=folder / "more.jsonl", fmt="jsonl", n_leads=300, seed=3, dirty=True)
    db = folder / "wh.duckdb"
    load_files(db, [events.path], config, now=NOW)
    load_files(db, [more.path], config, now=NOW)
    load_files(db, [more.path], config, replace=True, now=NOW)
    return SimpleNamespace(db=db, events=events, more=more)


@pytest.fixture(scope="module")
def app(dirty):
    from funnelboard.dashboard.app import create_app

    return create_app(dirty.db)


@pytest.fixture(scope="module")
def page(app):
    """The page's outputs by name."""
    data_quality = quality_page()
    with app.server.test_request_context():
        return dict(zip(OUTPUTS, data_quality.update("/data-quality"), strict=True))


def cards(summary) -> dict[str, tuple[str, str]]:
    """label -> (value, note) of the summary cards."""
    grid = summary[0]
    return {c.children[0].children: (c.children[1].children, c.children[2].children) for c in grid.children}


def export(app, table_id: str, pathname: str = "/data-quality", search: str = "") -> tuple[str, str]:
    """Click a table's Export CSV button the way the browser does: (file name, CSV text)."""
    button = {"table": table_id, "type": "fb-export"}
    payload = {
        "output": '{"table":["MATCH"],"type":"fb-download"}.data',
        "outputs": {"id": {"table": table_id, "type": "fb-download"}, "property": "data"},
        "inputs": [{"id": button, "property": "n_clicks", "value": 1}],
        "state": [{"id": "url", "property": "pathname", "value": pathname}, {"id": "url", "property": "search", "value": search}],
        "changedPropIds": [json.dumps(button, separators=(",", ":"), sort_keys=True) + ".n_clicks"],
    }
    response = app.server.test_client().post("/_dash-update-component", json=payload)
    assert response.status_code == 200, response.data[:500]
    data = next(iter(response.json["response"].values()))["data"]
    return data["filename"], data["content"]


@pytest.mark.slow
def test_the_page_is_registered_served_and_shown(app, page):
    import dash

    registered = next(p for p in dash.page_registry.values() if p["path"] == "/data-quality")
    assert registered["name"] == "Data quality" and registered["title"] == "funnelboard · data quality"
    response = app.server.test_client().get("/data-quality")
    assert response.status_code == 200
    assert page["message"] is None and page["body_hidden"] is False


def test_cards_equal_the_active_files_of_the_ledger(page, dirty):
    read, loaded, quarantined, duplicates, files = rows(
        dirty.db,
        "select sum(rows_read), sum(rows_loaded), sum(rows_quarantined), sum(rows_duplicate), count(*) "
        "from load_ledger where superseded_by is null",
    )[0]
    assert read == dirty.events.rows + dirty.more.rows  # the superseded first load of more.jsonl does not count
    assert read == loaded + quarantined + duplicates
    shown = cards(page["summary"])
    assert shown["Files loaded"] == (f"{files:,}", "+ 1 replaced by a later load")
    assert shown["Rows read"] == (f"{read:,}", "every row accounted for")
    # files loaded (no pull): the warehouse holds what the active files stored
    assert rows(dirty.db, "select (select count(*) from raw_events) + (select count(*) from raw_leads)")[0][0] == loaded
    assert shown["Loaded"] == (f"{loaded:,}", f"{loaded / read:.1%} of rows read")
    assert shown["Quarantined"] == (f"{quarantined:,}", f"{quarantined / read:.1%} of rows read")
    assert len(page["summary"]) == 2  # no sentence on rows replaced by pulls
    assert shown["Duplicates"][0] == f"{duplicates:,}"
    assert duplicates == dirty.events.dirty["duplicate"] + dirty.more.dirty["duplicate"]
    first, last = rows(dirty.db, "select min(entered_at), max(entered_at) from raw_events")[0]
    assert shown["First event"] == (f"{first:%Y-%m-%d}", f"{first:%H:%M} UTC")
    assert shown["Last event"][0] == f"{last:%Y-%m-%d}"
    assert shown["Published"][0] == f"{NOW:%Y-%m-%d}"
    identity = page["summary"][1].children[1]
    assert identity == f"{read:,} rows read = {loaded:,} loaded + {quarantined:,} quarantined + {duplicates:,} duplicates"


def test_ledger_table_has_every_file_as_funnelboard_status_lists_it(page, dirty):
    from funnelboard.dashboard.tables import grid_rows

    files = warehouse_status(dirty.db)["files"]
    assert page["ledger"] == grid_rows(files)[0]
    assert page["ledger_count"] == f"{len(files):,} rows"
    superseded = [r for r in page["ledger"] if r["superseded_by"] is not None]
    assert [r["source_file"].rsplit("/", 1)[1] for r in superseded] == ["more.jsonl"]


def test_reason_counts_equal_the_quarantine(page, dirty):
    counts = dict(rows(dirty.db, "select reason, count(*) from quarantine group by reason"))
    shown = {r["reason"]: r["rows"] for r in page["reasons"]}
    assert shown == counts
    assert [r["rows"] for r in page["reasons"]] == sorted(counts.values(), reverse=True)
    assert sum(r["share"] for r in page["reasons"]) == pytest.approx(1.0)
    total = sum(counts.values())
    assert total == sum(dirty.events.dirty[k] + dirty.more.dirty.get(k, 0) for k in QUARANTINED_DIRT) + dirty.more.dirty["malformed_json"]
    assert cards(page["summary"])["Quarantined"][0] == f"{total:,}"
    assert warehouse_status(dirty.db)["quarantine_reasons"] == shown  # `funnelboard status` and the page agree
    assert page["reasons_hidden"] is False and page["clean"] is None


@pytest.mark.slow
def test_examples_are_quarantined_rows_of_their_reason(page, dirty):
    counts = dict(rows(dirty.db, "select reason, count(*) from quarantine group by reason"))
    per_reason: dict[str, int] = {}
    for example in page["examples"]:
        found = rows(
            dirty.db,
            "select count(*) from quarantine q join load_ledger l using (file_id) "
            "where q.reason = $reason and l.source_file = $file and q.line = $line and q.detail = $detail and q.raw = $raw",
            {"reason": example["reason"], "file": example["source_file"], "line": example["line"],
             "detail": example["detail"], "raw": example["raw"]},
        )[0][0]
        assert found >= 1, example
        per_reason[example["reason"]] = per_reason.get(example["reason"], 0) + 1
    assert per_reason == {reason: min(3, n) for reason, n in counts.items()}
    unknown = [e for e in page["examples"] if e["reason"] == "unknown_stage"]
    labels = {r["label"] for r in page["labels"]}
    assert all(any(f'"{label}"' in e["detail"] for label in labels) for e in unknown)


def test_unmapped_labels_equal_the_quarantine_and_the_ledger_of_file_loads(page, dirty):
    expected: dict[str, int] = {}
    for (text,) in rows(dirty.db, "select unknown_labels from load_ledger where superseded_by is null"):
        for label, n in json.loads(text or "{}").items():
            expected[label] = expected.get(label, 0) + n
    assert {r["label"]: r["rows"] for r in page["labels"]} == expected
    assert sum(expected.values()) == dirty.events.dirty["unknown_stage"] + dirty.more.dirty["unknown_stage"]
    assert sum(expected.values()) == rows(dirty.db, "select count(*) from quarantine where reason = 'unknown_stage'")[0][0]
    assert page["labels_hidden"] is False and page["labels_empty"] is None


@pytest.mark.parametrize(
    "table_id,shown,name",
    [
        ("quality-ledger", "ledger", "load-ledger.csv"),
        ("quality-reasons", "reasons", "quarantine-reasons.csv"),
        ("quality-labels", "labels", "unmapped-stage-labels.csv"),
        ("quality-examples", "examples", "quarantine-examples.csv"),
        ("quality-quarantine", "quarantine", "quarantine.csv"),
    ],
)
def test_each_export_is_the_rows_of_its_table(app, page, table_id, shown, name):
    from funnelboard.dashboard.tables import export_rows, grid_rows

    filename, text = export(app, table_id)
    assert filename == name
    with app.server.test_request_context():
        _name, exported = export_rows(table_id, "/data-quality", "")
    assert text == rows_to_csv(exported)
    assert page[shown] == grid_rows(exported)[0]  # the grid shows the exported rows, cells made JSON-safe
    assert len(list(csv.DictReader(io.StringIO(text)))) == len(page[shown]) > 0


def test_ledger_export_has_the_columns_of_status_json(app, dirty):
    _name, text = export(app, "quality-ledger")
    header = text.splitlines()[0].split(",")
    assert header == list(warehouse_status(dirty.db)["files"][0])


def test_a_long_quarantine_shows_its_first_rows_and_exports_all(app, dirty, monkeypatch):
    data_quality = quality_page()
    monkeypatch.setattr(data_quality, "DISPLAY_CAP", 5)
    with app.server.test_request_context():
        page = dict(zip(OUTPUTS, data_quality.update("/data-quality"), strict=True))
    total = rows(dirty.db, "select count(*) from quarantine")[0][0]
    assert len(page["quarantine"]) == 5
    assert page["quarantine_count"] == f"first 5 of {total:,} rows shown · the export has all"
    _name, text = export(app, "quality-quarantine")
    assert len(list(csv.DictReader(io.StringIO(text)))) == total


@pytest.mark.slow
def test_a_clean_warehouse_says_nothing_was_quarantined(tmp_path):
    from funnelboard.dashboard.app import create_app

    events = generate(out=tmp_path / "events.csv", n_leads=200, seed=4)
    db = tmp_path / "wh.duckdb"
    load_files(db, [events.path], load_config(None), now=NOW)
    app = create_app(db)
    with app.server.test_request_context():
        page = dict(zip(OUTPUTS, quality_page().update("/data-quality"), strict=True))
    assert page["reasons"] == [] and page["examples"] == [] and page["labels"] == []
    assert page["reasons_hidden"] is True and page["rows_hidden"] is True and page["labels_hidden"] is True
    assert "No rows were quarantined" in str(page["clean"])
    assert "Every stage label was mapped" in str(page["labels_empty"])
    shown = cards(page["summary"])
    assert shown["Rows read"] == (f"{events.rows:,}", "every row accounted for")
    assert shown["Quarantined"][0] == "0"


@pytest.mark.slow
def test_after_pulls_the_cards_say_what_the_warehouse_holds_now(tmp_path):
    """Each pull fetches changed deals whole and replaces their rows: the ledger counts every load's rows,
    the warehouse holds fewer. The cards keep the ledger's identity and say what is held now; the unmapped
    labels count the quarantine as it is."""
    from funnelboard.dashboard.app import create_app
    from tests.etl.pull import harness
    from tests.etl.pull.loopback import Loopback
    from tests.etl.pull.test_pipedrive import CONFIG, company, env, later

    unmapped = tmp_path / "funnel.toml"
    unmapped.write_text(CONFIG.read_text().replace('"Demo Scheduled" = "demo"\n', ""))
    fake, db = company(), tmp_path / "w.duckdb"
    with Loopback(fake) as server:
        assert harness.run_pull("pipedrive", db, env(server), "--config", str(unmapped)).returncode == 0
        later(fake)
        assert harness.run_pull("pipedrive", db, env(server), "--config", str(unmapped)).returncode == 0
    (loaded, quarantined), = rows(db, "select sum(rows_loaded), sum(rows_quarantined) from load_ledger where superseded_by is null")
    (held, held_quarantined), = rows(db, "select (select count(*) from raw_events) + (select count(*) from raw_leads), "
                                         "(select count(*) from quarantine)")
    assert held < loaded and held_quarantined < quarantined  # deals fetched again: their earlier rows were replaced
    app = create_app(db)
    with app.server.test_request_context():
        page = dict(zip(OUTPUTS, quality_page().update("/data-quality"), strict=True))
    shown = cards(page["summary"])
    assert shown["Loaded"] == (f"{loaded:,}", f"{held:,} held now")
    assert shown["Quarantined"] == (f"{quarantined:,}", f"{held_quarantined:,} held now")
    assert page["summary"][2].children == (
        f"The warehouse holds {held:,} of the {loaded:,} rows loaded and {held_quarantined:,} of the {quarantined:,} "
        "quarantined: later pulls fetched records again and replaced their rows, or removed records deleted in the CRM."
    )
    assert {r["label"]: r["rows"] for r in page["labels"]} == {"Demo Scheduled": held_quarantined}
    assert sum(r["rows"] for r in page["reasons"]) == held_quarantined
    assert warehouse_status(db)["unknown_labels"] == {"Demo Scheduled": held_quarantined}


def test_no_warehouse_is_a_message_with_how_to_load_one(tmp_path):
    from dash import no_update

    from funnelboard.dashboard.app import create_app

    app = create_app(tmp_path / "none.duckdb")
    with app.server.test_request_context():
        message, *rest = quality_page().update("/data-quality")
    text = str(message)
    assert "No warehouse is published here yet" in text and "funnelboard load EVENTS.csv" in text and "funnelboard demo" in text
    assert str(tmp_path) not in text
    assert len(rest) == len(OUTPUTS) - 1 and all(r is no_update for r in rest)  # the body stays hidden
