"""A histogram bar on /time-in-stage drills to its spells: one click lands on /spells with as many rows
as the bar counts (the duration_distribution metric's number for that stage and bin), then a lead."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.e2e.chromium import chromium, screenshot, served_demo, settled, severe, wait, wait_for_graphs


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_demo(tmp_path_factory.mktemp("spell-drill"), n_leads=2000, seed=21) as served:
        yield served


def test_a_histogram_bar_opens_exactly_its_spells(server):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from funnelboard.warehouse.gateway import Gateway
    from funnelboard.warehouse.metrics import MetricRequest, run_metric

    url, db = server
    with chromium() as browser:
        browser.get(url + "/time-in-stage")
        wait_for_graphs(browser, 3)
        bars = "#tis-distribution .barlayer .point path"
        wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, bars)) > 5)
        settled(browser)

        def click_biggest(d):
            paths = d.find_elements(By.CSS_SELECTOR, bars)
            biggest = max(paths, key=lambda p: p.size["height"] * p.size["width"])
            ActionChains(d).move_to_element(biggest).click().perform()
            return True

        WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(click_biggest)
        wait(browser, lambda d: "/spells?" in d.current_url)
        asked = dict(parse_qsl(urlsplit(browser.current_url).query))
        rows = run_metric(Gateway(Path(db)), "duration_distribution", MetricRequest())
        low, high = float(asked["min_days"]), float(asked["max_days"]) if "max_days" in asked else None
        kind = "open" if asked["next"] == "open" else "completed"
        expected = sum(r[kind] for r in rows if r["stage"] == asked["stage"] and r["bin_start"] == low and r["bin_end"] == high)
        assert expected > 0
        wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".table-count").text == f"{expected:,} rows")
        wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".spells-count").text.startswith(f"{expected:,} spells of "))
        settled(browser)
        screenshot(browser, "spells")
        assert severe(browser) == []
