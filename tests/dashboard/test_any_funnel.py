"""Any funnel reads right: every page on a funnel with other stage names, and on the real Olist export
(two stages, no SQL, data that ends in 2018), names only the stages and rates its config names,
opens on a week with data, and shows the numbers `funnelboard query` prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.dashboard.figures.common import WRAP
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.olist import OLIST, ROOT, load_olist  # noqa: F401 - OLIST and ROOT for the tests that import them from here

# The demo's journeys under a team's own names: no "mql" or "sql" anywhere in the config.
RENAMED = """
[funnel]
stages = ["new", "qualified", "demo", "negotiation", "signed"]
outcomes = ["parked", "unfit", "handed_off", "closed_lost"]

[labels]
# the demo generator writes the labels of a BPO CRM
"new lead" = "new"
"marketing qualified" = "qualified"
"sales qualified" = "demo"
"scoping" = "negotiation"
"discovery / scoping" = "negotiation"
"proposal sent" = "negotiation"
"closed won" = "signed"
"recycled" = "parked"
"nurture" = "parked"
"unqualified" = "unfit"
"disqualified" = "unfit"
"re-routed" = "handed_off"
"closed lost" = "closed_lost"

[segments]
channel = "Channel"
owner = "Owner"

[review]
lost = ["closed_lost"]
"""


def rendered(value) -> str:
    """Everything a callback output shows, as text: components and figures as their JSON."""
    if hasattr(value, "to_plotly_json"):
        value = value.to_plotly_json()
    shown = json.dumps(value, ensure_ascii=False, default=lambda o: o.to_plotly_json() if hasattr(o, "to_plotly_json") else str(o))
    return shown.replace(WRAP, " ")  # a break made only for room reads as a space


def every_page(app) -> dict[str, str]:
    """The default view of every page: each callback of the page called with no query string."""
    import funnelboard.dashboard.pages.data_quality as data_quality
    import funnelboard.dashboard.pages.disqualifiers as disqualifiers
    import funnelboard.dashboard.pages.funnel as funnel
    import funnelboard.dashboard.pages.leads as leads
    import funnelboard.dashboard.pages.segments as segments
    import funnelboard.dashboard.pages.speed_to_lead as speed_to_lead
    import funnelboard.dashboard.pages.stalled as stalled
    import funnelboard.dashboard.pages.time_in_stage as time_in_stage
    import funnelboard.dashboard.pages.weekly as weekly

    shown = {}
    with app.server.test_request_context():
        for name, module in (("weekly", weekly), ("funnel", funnel), ("segments", segments), ("time_in_stage", time_in_stage),
                             ("disqualifiers", disqualifiers), ("stalled", stalled), ("leads", leads), ("data_quality", data_quality),
                             ("speed_to_lead", speed_to_lead)):
            parts = [rendered(module.layout())]
            for attr, fn in sorted(vars(module).items()):
                if attr.startswith("update") and callable(fn):
                    parts.append(rendered(fn("")))
            shown[name] = "\n".join(parts)
    return shown


def unnamed(text: str, allowed: set[str]) -> set[str]:
    """Funnel words the page shows that the config did not name, in any case ('sql' in "no 'sql' stage"
    too), as whole words; `allowed` in upper case."""
    return {w for w in re.findall(r"\b(SQLs?|MQLs?)\b", text, re.IGNORECASE) if w.upper().removesuffix("S") not in allowed}


@pytest.fixture(scope="module")
def renamed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("renamed")
    events = generate(out=folder / "events.csv", n_leads=1500, seed=12).path
    (folder / "funnel.toml").write_text(RENAMED, "utf-8")
    config = load_config(folder / "funnel.toml")
    db = folder / "wh.duckdb"
    report = load_files(db, [events], config, now=NOW)
    assert all(f.rows_quarantined == 0 for f in report.files)
    from funnelboard.dashboard.app import create_app

    return db, create_app(db)


@pytest.mark.slow
def test_a_renamed_funnel_names_only_its_own_stages(renamed):
    db, app = renamed
    pages = every_page(app)
    for page, text in pages.items():
        assert not unnamed(text, set()), (page, unnamed(text, set()))
    # the key rate is the funnel's first step, named by its stages; the pages say so
    assert "New → Qualified rate" in pages["weekly"] and "Reached Qualified" in pages["weekly"]
    assert "New → Qualified rate" in pages["segments"]
    assert run_metric(Gateway(db), "key_rate", MetricRequest())[0]["rate_name"] == "New → Qualified rate"


@pytest.mark.slow
def test_a_renamed_funnel_shows_its_win_rate_as_the_cli_does(renamed):
    db, app = renamed
    pages = every_page(app)
    (row,) = CliJson(db)("win_rate")
    assert row["win_rate"] is not None and row["lost_outcomes"] == "closed_lost"
    assert "Win rate" in pages["weekly"] and "Win rate by channel" in pages["segments"]


def test_the_win_rate_card_says_no_outcome_is_named_a_loss_as_the_cli_does(tmp_path):
    """Exits to `dropped` are in the data but no outcome is named a loss: the card says that, not that none is recorded."""
    from tests.cli.test_any_funnel_query import EVENTS, OWN_NAMES, UNNAMED
    from tests.warehouse.metrics.logs import warehouse

    db = warehouse(tmp_path, EVENTS, OWN_NAMES).db
    from funnelboard.dashboard.app import create_app

    app = create_app(db)
    import funnelboard.dashboard.pages.segments as segments
    import funnelboard.dashboard.pages.weekly as weekly

    with app.server.test_request_context():
        shown = rendered(weekly.update("?to=2024-01-21"))  # the week of the last events
        wins = rendered(segments.update_wins("?segment=channel"))
    assert UNNAMED in shown and "records no lost deal" not in shown
    assert "No win rate: no outcome is named a loss" in wins and UNNAMED[0].upper() + UNNAMED[1:] in wins
    assert "records no lost deal" not in wins
    (row,) = CliJson(db)("win_rate")
    assert row["note"] == UNNAMED


class CliJson:
    """`funnelboard query METRIC --format json` against one warehouse."""

    def __init__(self, db: Path):
        self.db = db

    def __call__(self, metric: str, *args: str) -> list[dict]:
        result = CliRunner().invoke(main, ["query", metric, *args, "--db", str(self.db), "--format", "json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)


@pytest.fixture(scope="module")
def olist(tmp_path_factory):
    db = load_olist(tmp_path_factory.mktemp("olist") / "olist.duckdb")
    from funnelboard.dashboard.app import create_app

    return db, create_app(db)


@pytest.mark.slow
def test_olist_pages_name_only_its_stages_and_open_on_a_week_with_data(olist):
    db, app = olist
    pages = every_page(app)
    for page in ("weekly", "funnel", "segments", "time_in_stage"):
        assert not unnamed(pages[page], {"MQL"}), (page, unnamed(pages[page], {"MQL"}))
        assert "No data in this period" not in pages[page] and "Nothing to show" not in pages[page], page
    # Olist records no exit at all: its charts of exits say that, not that the dates hold no data
    assert "No lead left the funnel to an outcome (lost) in the data." in pages["disqualifiers"]
    assert "No data in this period" not in pages["disqualifiers"]
    # Olist exports no first response: speed to lead says what to set, the weekly review has no line for it
    assert "set [attributes] first_response in funnel.toml" in pages["speed_to_lead"]
    assert pages["speed_to_lead"].count("This data has no first response per lead") >= 3  # the line and both charts
    assert "Speed to lead this week" not in pages["weekly"]
    (week,) = CliJson(db)("review_week")
    # New leads stop on 31 May 2018 (a Thursday), closes run on to November: the last full week of new leads.
    assert (week["week"], week["reason"], week["partial"]) == ("2018-05-21", "last_full_week", False)
    weekly = pages["weekly"]
    assert "Week of Mon 21 May 2018" in weekly and "new leads until Thu 31 May 2018" in weekly
    kpis = {r["kpi"]: r["value"] for r in CliJson(db)("weekly_kpis") if r["week"] == week["week"]}
    assert kpis["new_leads"] > 0 and f">{kpis['new_leads']:,}<" not in weekly  # counts are card texts, not markup
    assert json.dumps(f"{kpis['new_leads']:,}") in weekly and "Close rate" in weekly
    # Olist records no lost deal: no win rate, and the page says why, as the CLI does
    (wins,) = CliJson(db)("win_rate")
    assert wins["win_rate"] is None and wins["note"] == "no lost deal is recorded"
    assert "this data records no lost deal" in weekly
    assert "No win rate: this data records no lost deal" in pages["segments"]


def test_empty_states_say_why(app, db):
    """A period with no data says where the data is; a filter that matches nothing says so; an unknown
    stage in the URL is named with the funnel's own stages."""
    import funnelboard.dashboard.pages.funnel as funnel
    from funnelboard.dashboard.state import parse

    facts = Gateway(db).facts()
    with app.server.test_request_context():
        before = rendered(funnel.update("?from=2001-01-01&to=2001-02-01"))
        nobody = rendered(funnel.update("?channel=nobody"))
    first, last = facts["first_event"], facts["last_event"]
    assert f"No data in this period: the data runs from {first:%a %d %b %Y} to {last:%a %d %b %Y}." in before
    assert "No leads match the filters (channel = nobody) in the data." in nobody  # no dates: the whole data
    view = parse("?from_stage=sql", load_config(ROOT / "examples" / "olist" / "funnel.toml"))
    assert view.problems == ("from_stage 'sql' is not a stage of this funnel (its stages: mql, won).",)
