"""The weekly review drills to exactly its numbers: each KPI card's list (this week's) has as many rows
as the card counts, every count of "changes this week" opens a list of that many rows, and
`funnelboard query` prints the same lists for the same filters; on the demo and a renamed funnel."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import CliRunner
from dash import dcc

from funnelboard.cli import main
from funnelboard.dashboard.figures.weekly import CHANGE_COLUMNS, changes_table
from funnelboard.dashboard.runtime import gateway
from funnelboard.dashboard.views import view_request
from funnelboard.warehouse.metrics import run_metric
from tests.dashboard.test_any_funnel import olist, renamed  # noqa: F401  (fixtures: the demo under other stage names, Olist)

CLI_KEYS = {"from": "--from", "to": "--to", "as_of": "--as-of", "from_stage": "--from-stage", "to_stage": "--to-stage",
            "which": "--which", "window": "--window", "change": "--change", "stage": "--stage", "outcome": "--outcome", "reason": "--reason"}


def links(component) -> list[tuple[str, str]]:
    """(text, href) of every dcc.Link in a component tree, in order."""
    found = []

    def walk(c):
        if isinstance(c, (list, tuple)):
            for x in c:
                walk(x)
        elif isinstance(c, dcc.Link):
            found.append((c.children, c.href))
        elif hasattr(c, "children"):
            walk(c.children)

    walk(component)
    return found


def listed(href: str) -> list[dict]:
    """The rows of the list an address opens, as its page gets them (in a request of the app)."""
    from funnelboard.dashboard.pages import changes

    parts = urlsplit(href)
    search = "?" + parts.query if parts.query else ""
    g = gateway()
    if parts.path == "/changes":
        req, view = changes.change_request(g, search)
        assert not view.problems, view.problems
        return run_metric(g, "change_leads", req)
    assert parts.path == "/leads", href
    req, view = view_request(g, search)
    assert not view.problems, view.problems
    return run_metric(g, "leads", req)


def cli_rows(db, href: str) -> list[dict]:
    """`funnelboard query` for the filters of an address: leads or change_leads."""
    parts = urlsplit(href)
    args = ["query", "change_leads" if parts.path == "/changes" else "leads", "--db", str(db), "--format", "json"]
    for key, value in parse_qsl(parts.query):
        args += [CLI_KEYS[key], value] if key in CLI_KEYS else ["--filter", f"{key}={value}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def check_cards(app, db, search: str = "") -> int:
    """Every card's this-week list against the card's number; returns how many cards were checked."""
    from funnelboard.dashboard.pages import weekly

    with app.server.test_request_context():
        g = gateway()
        config = g.config()
        req, view = view_request(g, search)
        (week,) = run_metric(g, "review_week", req)
        values = {r["kpi"]: r["value"] for r in run_metric(g, "weekly_kpis", req) if r["week"] == week["week"]}
        cards, _trend, _notes = weekly.update(search)
        shown = {href for _text, href in links(cards)}
        checked = 0
        for kpi, value in values.items():
            if kpi == "immature" or value is None:
                continue
            hrefs = weekly.card_links(kpi, search, config, week["week"], view.window_days)
            assert hrefs is not None, kpi
            assert hrefs["this"] in shown and hrefs["last"] in shown, kpi
            rows = listed(hrefs["this"])
            if kpi == "key_rate":  # the cohort, and the rate is its converted share
                assert rows and sum(r["converted"] for r in rows) / len(rows) == pytest.approx(value, abs=1e-12)
                assert f" of {len(rows):,}" in str(cards)  # the card says what the rate is of: this list
                converted = listed(hrefs["this"] + "&which=converted")
                assert len(converted) == sum(r["converted"] for r in rows)
            elif kpi == "win_rate":  # the closes, and the rate is the won share
                assert f" of {len(rows):,}" in str(cards)
                assert rows and sum(r["change"] == "won" for r in rows) / len(rows) == pytest.approx(value, abs=1e-12)
            elif kpi == "median_days_to_target":  # the leads it is the median of: those reaching the key stage
                assert len(rows) == values[f"reached_{config.review_rate.to_stage}"]
            else:
                assert len(rows) == value, kpi
            assert len(cli_rows(db, hrefs["this"])) == len(rows), kpi
            assert listed(hrefs["last"]) is not None
            checked += 1
        return checked


def check_changes(app, db, search: str = "") -> int:
    """Every linked count of "changes this week" against its list; returns how many were checked."""
    from funnelboard.dashboard.pages import weekly

    with app.server.test_request_context():
        table = weekly.update_changes(search)
        counted = links(table)
        assert counted, "a week without changes checks nothing"
        for text, href in counted:
            assert len(listed(href)) == int(text.replace(",", "")), href
        text, href = counted[0]
        assert len(cli_rows(db, href)) == int(text.replace(",", ""))
        return len(counted)


@pytest.mark.slow
def test_every_card_of_the_demo_opens_exactly_its_leads(app, db):
    assert check_cards(app, db) >= 9  # new leads, 5 stages, exits, key rate, median days, lost, win rate


@pytest.mark.slow
def test_every_card_of_a_filtered_earlier_week_opens_exactly_its_leads(app, db):
    assert check_cards(app, db, "?from=2026-09-01&to=2026-10-14&channel=referral&window=30") >= 9


@pytest.mark.slow
def test_every_card_of_a_renamed_funnel_opens_exactly_its_leads(renamed):  # noqa: F811
    db, app = renamed
    assert check_cards(app, db) >= 9


@pytest.mark.slow
def test_every_change_count_opens_that_many_leads(app, db, renamed):  # noqa: F811
    assert check_changes(app, db) > 6
    assert check_changes(app, db, "?as_of=2026-10-07&owner=Maya Patel") > 0
    renamed_db, renamed_app = renamed
    assert check_changes(renamed_app, renamed_db) > 6


def test_the_changes_table_links_each_non_zero_count_and_the_exit_reasons():
    rows = [{"stage": "mql", **{k: 0 for k, _l, _h in CHANGE_COLUMNS}, "advanced": 1_234}]
    exits = [{"outcome": "lost", "reason": "Price", "exited": 2}]
    parts = changes_table(rows, exits, lambda keys: "/changes?" + "&".join(f"{k}={v}" for k, v in keys.items() if v))
    assert links(parts) == [("1,234", "/changes?change=advanced&stage=mql"), ("2", "/changes?change=exited&outcome=lost&reason=Price")]
    empty = changes_table([{"stage": "mql", **{k: 0 for k, _l, _h in CHANGE_COLUMNS}}], [], lambda keys: "")
    assert "No lead entered" in str(empty) and not links(empty)


def test_the_changes_export_is_what_the_cli_prints_and_refuses_a_bad_kind(app, db):
    client = app.server.test_client()
    search = "?change=exited&stage=mql&from=2026-09-01&to=2026-10-31"
    got = client.get("/export/changes.csv" + search)
    assert got.status_code == 200
    cli = CliRunner().invoke(main, ["query", "change_leads", "--change", "exited", "--stage", "mql", "--from", "2026-09-01",
                                    "--to", "2026-10-31", "--db", str(db), "--format", "csv"])
    assert cli.exit_code == 0 and got.data.decode("utf-8") == cli.output and cli.output.count("\n") > 2
    bad = client.get("/export/changes.csv?change=teleported")
    assert bad.status_code == 400 and b"Change 'teleported'" in bad.data
    with app.server.test_request_context():
        from funnelboard.dashboard.pages import changes

        _req, view = changes.change_request(gateway(), "?change=teleported&outcome=moon")
        assert len(view.problems) == 2


@pytest.mark.slow
def test_olist_cards_and_changes_open_exactly_their_leads(olist):  # noqa: F811
    db, app = olist  # two stages, no SQL stage, data ending in 2018: the review week is its last full week
    assert check_cards(app, db) >= 5
    assert check_changes(app, db) >= 3
