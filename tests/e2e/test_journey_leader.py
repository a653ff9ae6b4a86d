"""The sales leader's journey in headless Chromium: weekly review -> a KPI card -> its leads (as many
rows as the card says, as many as `funnelboard query` prints) -> one lead -> back to the list -> back
to the review -> a count of "changes this week" -> a list of that many changes.

Clicks: 2 from the review to one lead behind a card (card, lead), where the issue measured 4 with a
"why" only for the SQL count; 1 from the review to the leads behind any count of the changes table.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.dashboard.theme import stage_label
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from tests.e2e.chromium import chromium, screenshot, served_demo, settled, severe, wait

CLI_KEYS = {"from": "--from", "to": "--to", "from_stage": "--from-stage", "to_stage": "--to-stage", "which": "--which",
            "change": "--change", "stage": "--stage", "outcome": "--outcome", "reason": "--reason"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_demo(tmp_path_factory.mktemp("leader")) as (url, db):
        yield url, db


def cli_count(db: Path, address: str) -> int:
    """How many rows `funnelboard query` prints for the filters of a /leads or /changes address."""
    parts = urlsplit(address)
    args = ["query", "change_leads" if parts.path == "/changes" else "leads", "--db", str(db), "--format", "json"]
    for key, value in parse_qsl(parts.query):
        args += [CLI_KEYS[key], value] if key in CLI_KEYS else ["--filter", f"{key}={value}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return len(json.loads(result.output))


def row_count(driver) -> int:
    from selenium.webdriver.common.by import By

    text = wait(driver, lambda d: (t := d.find_element(By.CSS_SELECTOR, ".table-count").text) and t)
    return int(text.split()[0].replace(",", ""))


def test_the_leader_goes_from_a_card_to_a_lead_and_back_then_to_a_change(server):
    from selenium.webdriver.common.by import By

    url, db = server
    g = Gateway(Path(db))
    config = g.config()
    (week,) = run_metric(g, "review_week", MetricRequest())
    target = config.review_rate.to_stage
    card_number = next(r["value"] for r in run_metric(g, "weekly_kpis", MetricRequest())
                       if r["week"] == week["week"] and r["kpi"] == f"reached_{target}")
    assert card_number > 0
    label = f"Reached {stage_label(target)}"
    clicks = 0
    with chromium(1440, 1000) as browser:
        browser.get(url + "/")
        settled(browser)
        card = wait(browser, lambda d: next((c for c in d.find_elements(By.CSS_SELECTOR, ".card")
                                             if c.find_elements(By.CSS_SELECTOR, ".card-label")
                                             and c.find_element(By.CSS_SELECTOR, ".card-label").get_attribute("textContent") == label), None))
        link = card.find_element(By.CSS_SELECTOR, ".card-link")
        assert link.text == f"{card_number:,}"
        link.click()
        clicks += 1
        wait(browser, lambda d: "/leads?" in d.current_url)
        settled(browser)
        listed = browser.current_url
        assert row_count(browser) == card_number == cli_count(db, "/leads?" + urlsplit(listed).query)
        # one lead of the list, its history, and back
        cell = wait(browser, lambda d: next((c for c in d.find_elements(By.CSS_SELECTOR, ".ag-row [col-id='lead_id']") if c.text), None))
        lead = cell.text
        cell.click()
        clicks += 1
        wait(browser, lambda d: f"/lead/{lead}" in d.current_url)
        wait(browser, lambda d: lead in d.find_element(By.CSS_SELECTOR, ".page-title").text)
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".ag-row"))
        browser.back()
        wait(browser, lambda d: d.current_url == listed)
        settled(browser)
        assert row_count(browser) == card_number
        browser.back()
        wait(browser, lambda d: urlsplit(d.current_url).path == "/")
        # the changes view: one count of the table, its list
        count = wait(browser, lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, ".changes-table a")), None))
        settled(browser)
        screenshot(browser, "weekly-changes")
        expected = int(count.text.replace(",", ""))
        count.click()
        wait(browser, lambda d: "/changes?" in d.current_url)
        settled(browser)
        assert row_count(browser) == expected == cli_count(db, "/changes?" + urlsplit(browser.current_url).query)
        screenshot(browser, "changes")
        assert severe(browser) == []
    assert clicks == 2  # from the review to one lead behind a card's number
