"""Saved views in Chromium: save the page as it is filtered, go elsewhere, open the view from the
header and land on the same address with the same filter bar."""

from __future__ import annotations

import pytest

from funnelboard.core.saved_views import views_of, views_path
from tests.e2e.chromium import chromium, served_demo, settled, severe, wait

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_demo(tmp_path_factory.mktemp("saved"), n_leads=1500, seed=5, dirty=False) as (url, db):
        yield url, db


def test_a_saved_view_reopens_the_same_address_and_filters(server):
    from selenium.webdriver.common.by import By

    url, db = server
    address = "/segments?segment=industry&period=last_quarter&channel=referral"
    with chromium() as d:
        d.get(url + address)
        settled(d)
        d.find_element(By.CSS_SELECTOR, "#sv-panel > summary").click()
        d.find_element(By.ID, "sv-name").send_keys("Referral by industry")
        d.find_element(By.ID, "sv-save").click()
        wait(d, lambda d: "Saved" in d.find_element(By.ID, "sv-message").text)
        assert views_of(views_path(db), "") == [("Referral by industry", address)]
        d.find_element(By.LINK_TEXT, "Funnel").click()
        wait(d, lambda d: "/funnel" in d.current_url)
        settled(d)
        wait(d, lambda d: d.find_element(By.ID, "sv-panel").get_attribute("open") is None)  # moving on folds it away
        d.find_element(By.CSS_SELECTOR, "#sv-panel > summary").click()
        wait(d, lambda d: d.find_elements(By.LINK_TEXT, "Referral by industry"))[0].click()
        wait(d, lambda d: d.current_url == url + address)
        settled(d)
        assert d.find_element(By.ID, "sv-panel").get_attribute("open") is None
        bar = d.find_element(By.ID, "filter-bar").text
        assert "referral" in bar and "Last quarter" in bar, bar
        assert severe(d) == []
