"""The qualification views in headless Chromium (issue 17): speed to lead per channel, the key rate by
response band, handoff quality and the SLA breaches on /speed-to-lead; the weekly review's speed-to-lead
line and criteria-health panel; the score-threshold chart on /segments. Every number the browser shows
is what `funnelboard query` prints for the same view, and a breach opens its lead."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.chromium import chromium, screenshot, served_demo, settled, severe, wait

PERIOD = ("--from", "2026-06-01", "--to", "2026-10-31")
SEARCH = "?from=2026-06-01&to=2026-10-31"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_demo(tmp_path_factory.mktemp("qualification")) as (url, db):
        yield url, db


def query(db, *args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "funnelboard", "query", *args, "--format", "json", "--db", str(db)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_speed_to_lead_page_shows_the_cli_s_numbers_and_a_breach_opens_its_lead(server):
    from selenium.webdriver.common.by import By

    url, db = server
    (total,) = query(db, "speed_to_lead", *PERIOD)
    handoff = {r["channel"]: r for r in query(db, "handoff", *PERIOD, "--segment", "channel")}
    breaches = query(db, "response_leads", *PERIOD, "--filter", "status=breach")
    with chromium(1440, 1000) as browser:
        browser.get(url + "/speed-to-lead" + SEARCH)
        summary = wait(browser, lambda d: [e for e in d.find_elements(By.ID, "stl-summary") if "leads came in" in e.text])[0]
        settled(browser)
        assert f"{total['leads']:,} leads came in" in summary.text and f"{total['breaches']:,} SLA breaches" in summary.text
        titles = [t.text for t in browser.find_elements(By.CSS_SELECTOR, ".gtitle")]
        assert "Time to first response (business hours)" in titles and any("by time to first response" in t for t in titles)
        # handoff rows: channel and handoffs as the CLI counts them
        grid = browser.find_element(By.CSS_SELECTOR, "[id*='stl-handoff'][id*='fb-grid']")
        shown = {}
        for row in grid.find_elements(By.CSS_SELECTOR, ".ag-center-cols-container .ag-row"):
            cells = {c.get_attribute("col-id"): c.text for c in row.find_elements(By.CSS_SELECTOR, ".ag-cell")}
            shown[cells["channel"]] = cells["handoffs"]
        assert shown and all(shown[c] == f"{handoff[c]['handoffs']:,}" for c in shown)
        screenshot(browser, "speed-to-lead")
        # the first breach listed is the CLI's first; its cell opens the lead
        first = browser.find_element(By.CSS_SELECTOR, "[id*='stl-breaches'][id*='fb-grid'] .ag-row[row-index='0'] [col-id='lead_id']")
        assert first.text == breaches[0]["lead_id"]
        first.click()
        wait(browser, lambda d: f"/lead/{breaches[0]['lead_id']}" in d.current_url)
        assert not severe(browser)


def test_the_weekly_review_shows_the_speed_line_and_the_criteria_checks(server):
    from selenium.webdriver.common.by import By

    url, db = server
    checks = query(db, "criteria_health")
    fired = sum(c["status"] == "fires" for c in checks)
    with chromium(1440, 1000) as browser:
        browser.get(url + "/")
        panel = wait(browser, lambda d: [e for e in d.find_elements(By.ID, "weekly-criteria") if "Criteria health" in e.text])[0]
        line = wait(browser, lambda d: [e for e in d.find_elements(By.ID, "weekly-response") if "Speed to lead this week" in e.text])[0]
        settled(browser)
        title = f"{fired} of {len(checks)} checks fire" if fired else f"none of {len(checks)} checks fires"
        assert title in panel.text
        rows = panel.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == len(checks)
        assert {r.find_elements(By.TAG_NAME, "td")[-1].text for r in rows} == {c["reading"] for c in checks}
        line.find_element(By.TAG_NAME, "a").click() if line.tag_name != "a" else line.click()
        wait(browser, lambda d: "/speed-to-lead?" in d.current_url and "from=" in d.current_url)
        assert not severe(browser)


def test_the_segments_page_draws_the_score_threshold_the_cli_computes(server):
    from selenium.webdriver.common.by import By

    url, _db = server
    with chromium(1440, 1000) as browser:
        browser.get(url + "/segments")
        wait(browser, lambda d: [t for t in d.find_elements(By.CSS_SELECTOR, ".gtitle") if "threshold" in t.text.lower()])
        settled(browser)
        notes = " ".join(a.text for a in browser.find_elements(By.CSS_SELECTOR, ".annotation-text"))
        assert "current threshold 45" in notes
        assert not severe(browser)


def test_a_weekly_sla_breach_link_opens_exactly_its_leads(server):
    """The weekly review's stage-SLA breaches ([sla] of the demo config): the browser follows the SQL
    stage's link to /stalled?over=sla&stage=sql, whose list holds the CLI's count of those breaches."""
    from selenium.webdriver.common.by import By

    url, db = server
    (want,) = query(db, "stalled_summary", "--filter", "over=sla", "--filter", "stage=sql")
    with chromium(1440, 1000) as browser:
        browser.get(url + "/")
        line = wait(browser, lambda d: [e for e in d.find_elements(By.ID, "weekly-stalled") if "Stage-SLA breaches" in e.text])[0]
        settled(browser)
        link = next(a for a in line.find_elements(By.TAG_NAME, "a") if a.text.startswith("SQL "))
        assert link.text.startswith(f"SQL {want['stalled']:,}")
        link.click()
        wait(browser, lambda d: "over=sla" in d.current_url and "stage=sql" in d.current_url)
        summary = wait(browser, lambda d: [e for e in d.find_elements(By.ID, "stalled-summary") if "past their stage SLA" in e.text])[0]
        settled(browser)
        assert summary.text.startswith(f"{want['stalled']:,} leads stalled past their stage SLA")
        count = wait(browser, lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, ".table-count, [id*='stalled'][id*='count']") if "rows" in e.text])
        assert count[0].text.startswith(f"{want['stalled']:,} row")
        assert not severe(browser)
