"""Empty states tell the truth: a review week the filters leave empty is named as that week (the data
may hold those leads in other weeks), a warehouse whose every row was quarantined shows no week of
1970, and an events file without one usable date is refused before it loads nothing. (Also: a key
rate named by its stages is not followed by them on its card.)"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.dashboard.app import create_app
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from tests.dashboard import test_any_funnel
from tests.dashboard.test_any_funnel import rendered
from tests.olist import load_olist

renamed = test_any_funnel.renamed  # the fixture: a funnel with its own stage names


@pytest.fixture(scope="module")
def olist(tmp_path_factory):
    db = load_olist(tmp_path_factory.mktemp("olist") / "olist.duckdb")
    return db, create_app(db)


def test_filters_that_empty_the_review_week_name_the_week_not_the_data(olist):
    import funnelboard.dashboard.pages.weekly as weekly

    db, app = olist
    filters = (("channel", "email"), ("lead_type", "industry"))
    g = Gateway(db)
    week = run_metric(g, "review_week", MetricRequest(filters=filters))[0]["week"]
    in_data = run_metric(g, "funnel", MetricRequest(filters=filters))[0]["reached"]
    assert in_data > 0  # the data holds such leads: only the review week has none
    with app.server.test_request_context():
        cards, _trend, _notes = weekly.update("?channel=email&lead_type=industry")
    shown = rendered(cards)
    assert f"No leads match the filters (channel = email, lead_type = industry) in the week of {week:%a %d %b %Y}." in shown
    assert "in the data" not in shown


def test_a_warehouse_of_quarantined_rows_shows_no_week(tmp_path):
    import funnelboard.dashboard.pages.weekly as weekly

    events = tmp_path / "events.csv"
    events.write_text("lead_id,stage,entered_at\nL1,no such stage,2024-01-01\n", "utf-8")
    db = tmp_path / "wh.duckdb"
    result = CliRunner().invoke(main, ["load", str(events), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    with create_app(db).server.test_request_context():
        _cards, _trend, notes = weekly.update("")
    shown = rendered(notes)
    assert "The warehouse holds no events yet" in shown
    assert "1969" not in shown and "1970" not in shown and "Week of" not in shown


def test_an_events_file_without_a_usable_date_is_refused_and_loads_nothing(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("lead_id,stage,entered_at\nL1,mql,\nL2,sql,not a date\nL3,mql,2024-02-30\n", "utf-8")
    db = tmp_path / "wh.duckdb"
    result = CliRunner().invoke(main, ["load", str(events), "--db", str(db)])
    assert result.exit_code != 0
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert error == [f"error: events file '{events}' has no usable date: no row's entered_at is a date (3 empty or unreadable), "
                     "and each event needs one (when its lead entered the stage, such as 2024-01-31 or 2024-01-31T09:30:00Z); "
                     "nothing was loaded."]
    assert "Traceback" not in result.output
    assert not db.exists()
    # one dated row is enough: the file loads, the others go to the quarantine
    events.write_text("lead_id,stage,entered_at\nL1,mql,\nL2,mql,2024-02-01\n", "utf-8")
    result = CliRunner().invoke(main, ["load", str(events), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    assert Gateway(db).facts()["first_event"] is not None


def test_a_key_rate_named_by_its_stages_is_not_followed_by_them_again(renamed):
    """A funnel without a [review] name gets "New → Qualified rate"; the card says it once."""
    import funnelboard.dashboard.pages.weekly as weekly

    _db, app = renamed
    with app.server.test_request_context():
        cards, _trend, _notes = weekly.update("")
    shown = rendered(cards)
    assert '"children": ["New → Qualified rate"], "className": "card-label"' in shown
    assert "card-sub" not in shown  # the pair under the name, which a named key rate ("SQL rate") keeps


def test_the_cli_says_a_warehouse_of_quarantined_rows_has_no_events(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("lead_id,stage,entered_at\nL1,no such stage,2024-01-01\n", "utf-8")
    db = tmp_path / "wh.duckdb"
    assert CliRunner().invoke(main, ["load", str(events), "--db", str(db), "--quiet"]).exit_code == 0
    status = CliRunner().invoke(main, ["status", "--db", str(db)])
    assert "no events yet: every row loaded so far is in the quarantine" in status.output and "None" not in status.output
    query = CliRunner().invoke(main, ["query", "review_week", "--db", str(db)])
    assert query.exit_code == 0
    assert "note: the warehouse holds no events yet" in query.output


def test_a_criteria_panel_that_judged_nothing_does_not_say_none_fires(olist):
    """Olist's key rate is a close rate: no check applies, and the panel says so rather than "none fires"."""
    import funnelboard.dashboard.pages.weekly as weekly

    _db, app = olist
    with app.server.test_request_context():
        shown = rendered(weekly.update_criteria(""))
    assert "Criteria health: none of 4 checks applies to this funnel until [criteria_health] names its stages" in shown
    assert "fires" not in shown.split("Criteria health:")[1].split('"')[0]
