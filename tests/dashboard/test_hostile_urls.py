"""Whatever the address says, no page answers 500 or shows a traceback: every callback of every page is
fired as the browser fires it (the latency benchmark's replay) and every export route is fetched."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.latency import _pages
from funnelboard.dashboard import state
from funnelboard.warehouse.gateway import Gateway
from tests.dashboard.replay import replay_client
from tests.dashboard.test_any_funnel import olist, renamed  # noqa: F401 - fixtures

EXPORTS = ("leads", "stalled")
DEFECTS = [  # the values that answered 500 before, each a reproduction
    "?window=%C2%B2",
    "?window=99999999999999999999",
    "?as_of=9999-12-31",
    "?as_of=0001-01-01",
    "?from=0001-01-01&to=9999-12-31",
]


@pytest.fixture(scope="module")
def client(app):
    return replay_client(app)


def visit(client, db, pathname: str, search: str) -> None:
    """Open the address: every callback answers (no 500), none returns a traceback, the problem line names
    every bad value, and each download answers its file, or a 400 when the address has bad values."""
    problems = state.parse(search, Gateway(db).config()).problems
    samples = client.visit(pathname, search, "", clicks=True)
    assert samples, "the visit fired nothing"
    for s in samples:
        assert s.status != 500, f"{pathname}{search}: {s.callback} answered 500"
        if s.callback.startswith("GET /export/") and s.status == 400:
            continue
        assert s.ok, f"{pathname}{search}: {s.callback}: {s.error}"
    for payload in client.last_payloads:
        text = str(payload)
        assert "Traceback" not in text and "Exception" not in text, f"{pathname}{search}: {text[:300]}"
    shown = [p["response"]["filter-problems"]["children"] for p in client.last_payloads if "filter-problems" in p["response"]]
    assert shown == [state.problem_line(problems) if problems else None]


@pytest.mark.slow
@pytest.mark.parametrize("search", DEFECTS)
def test_the_values_that_answered_500_are_a_problem_line_on_the_page_and_a_400_for_the_export(app, client, db, search):
    visit(client, db, "/", search)
    problems = state.parse(search, Gateway(db).config()).problems
    assert problems, "each of these values is a problem the page names"
    for table in EXPORTS:
        with app.server.test_client().get(f"/export/{table}.csv{search}") as response:
            assert response.status_code == 400
            assert response.get_data(as_text=True) == state.problem_line(problems, refused=True) + "\n"


@pytest.mark.parametrize("search", ["?from=2026-99-99", "?nope=1", "?channel=referral&segment=lead_id"])
def test_an_export_refuses_an_address_it_cannot_honour_rather_than_send_the_whole_list(app, search):
    with app.server.test_client().get(f"/export/leads.csv{search}") as response:
        assert response.status_code == 400 and "Nothing exported" in response.get_data(as_text=True)
        assert response.mimetype == "text/plain" and response.get_data(as_text=True).count("\n") == 1


HOSTILE = [
    "²", "٣", "99999999999999999999", "-1", "1e9", "0x10", " 7", "9999-12-31", "0001-01-01", "2026-02-30",
    "2026-99-99", "2018-05-21", "2026-03-01", "mql", "sql", "won", "channel", "owner", "all", "mature",
    "business", "' OR 1=1 --", '"; DROP TABLE events; --', "<script>alert(1)</script>", '=HYPERLINK("http://x","y")',
    "\x00", "%00", "../../etc/passwd", "{{7*7}}", "x" * 2000, "🙂", "\u202e", "NaN",
]
KEYS = [*state.KEYS, "days", "channel", "owner", "region", "lead_id", "page", "", "__proto__", "from[]"]


def _pair():
    keys = st.sampled_from(KEYS) | st.text(max_size=8)
    values = st.sampled_from(HOSTILE) | st.text(max_size=24) | st.integers().map(str)
    return st.tuples(keys, values)


def _searches():
    encoded = st.lists(_pair(), max_size=6).map(lambda pairs: "?" + urlencode(pairs) if pairs else "")
    raw = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60).map(lambda t: "?" + quote(t, safe="=&%?+"))
    return encoded | raw


@pytest.fixture(scope="module", params=["demo", "renamed", "olist"])
def funnel(request, app, db):
    """(db, app, replay client, a lead) of the demo, of a funnel with renamed stages, and of Olist's real one."""
    if request.param != "demo":
        db, app = request.getfixturevalue(request.param)
    lead = Gateway(db).query("select min(lead_id) from fct_leads").rows[0][0]
    return db, app, replay_client(app), lead


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_address_makes_a_page_fail_or_an_export_answer_500(funnel, data):
    db, app, client, lead = funnel
    pages = _pages(client.shell) + [f"/lead/{quote(lead, safe='')}", "/lead/" + quote("' OR 1=1 --", safe="")]
    pathname = data.draw(st.sampled_from(pages), label="page")
    search = data.draw(_searches(), label="search")
    visit(client, db, pathname, search)
    problems = state.parse(search, Gateway(db).config()).problems
    for table in EXPORTS:
        with app.server.test_client().get(f"/export/{table}.csv{search}") as response:
            assert response.status_code == (400 if problems else 200), response.get_data(as_text=True)[:300]
