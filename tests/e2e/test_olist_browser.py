"""The weekly review of the real Olist export in headless Chromium: it opens on the last full week of
new leads with its cards drawn, names no stage the config does not have, and logs no console error.
With $FUNNELBOARD_SCREENSHOTS set it saves docs/screenshots/olist-weekly.png."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from tests.e2e.chromium import browser_or_fail, chromium, screenshot, served, settled, severe, wait_for_graphs

ROOT = Path(__file__).resolve().parents[2]
OLIST = Path(os.environ.get("FUNNELBOARD_OLIST_DIR") or ROOT.parent / "shared" / "data" / "olist_marketing_funnel")


@pytest.fixture(scope="module")
def olist_url(tmp_path_factory):
    browser_or_fail()
    mqls = OLIST / "olist_marketing_qualified_leads_dataset.csv"
    deals = OLIST / "olist_closed_deals_dataset.csv"
    if not (mqls.exists() and deals.exists()):
        message = f"Olist data not found in {OLIST} (never copied into the repository; set FUNNELBOARD_OLIST_DIR)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("olist-e2e")
    db = folder / "olist.duckdb"
    config = ROOT / "examples" / "olist" / "funnel.toml"
    result = CliRunner().invoke(main, ["load", str(mqls), str(deals), "--source", "wide", "--config", str(config), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    with served(db, folder) as url:
        yield url


def test_the_olist_weekly_review_opens_on_a_week_with_data(olist_url):
    from selenium.webdriver.common.by import By

    with chromium() as browser:
        browser.get(olist_url + "/")
        wait_for_graphs(browser, 1)
        settled(browser)
        text = browser.find_element(By.CSS_SELECTOR, "main").text
        assert "Week of Mon 21 May 2018" in text and "new leads until Thu 31 May 2018" in text
        cards = {c.find_element(By.CSS_SELECTOR, ".card-label").get_attribute("textContent").strip():
                 c.find_element(By.CSS_SELECTOR, ".card-value").get_attribute("textContent").strip()
                 for c in browser.find_elements(By.CSS_SELECTOR, ".card")}
        assert cards["New leads"] == "311" and cards["Close rate MQL → Won"] == "10.6% of 311" and cards["Win rate"] == "—"
        assert not re.search(r"\bSQLs?\b", text), "the Olist funnel has no SQL stage"
        assert browser.find_elements(By.CSS_SELECTOR, ".empty") == []
        assert severe(browser) == []
        screenshot(browser, "olist-weekly")
