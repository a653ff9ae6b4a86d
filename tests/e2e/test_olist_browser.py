"""The weekly review of the real Olist export in headless Chromium: it opens on the last full week of
new leads with its cards drawn, names no stage the config does not have, and logs no console error.
With $FUNNELBOARD_SCREENSHOTS set it saves docs/screenshots/olist-weekly.png."""

from __future__ import annotations

import re

import pytest

from tests.e2e.chromium import browser_or_fail, chromium, screenshot, served, settled, severe, wait_for_graphs
from tests.olist import OLIST, ROOT, load_olist  # noqa: F401 - OLIST and ROOT for the tests that import them from here


@pytest.fixture(scope="module")
def olist_url(tmp_path_factory):
    browser_or_fail()
    folder = tmp_path_factory.mktemp("olist-e2e")
    db = load_olist(folder / "olist.duckdb")
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
