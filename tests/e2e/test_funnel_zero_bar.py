"""In headless Chromium: a click on the row of a funnel stage that no lead of the cohort reached (a bar
of 0, no area of its own) opens that stage's list, /leads with the stage's keys and 0 rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.dashboard.test_funnel_page import utc
from tests.e2e.chromium import browser_or_fail, chromium, screenshot, served, settled, severe, wait, wait_for_graphs


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    browser_or_fail()
    folder = tmp_path_factory.mktemp("zero-bar")
    events = generate(out=folder / "events.csv", n_leads=3000, seed=13, dirty=True).path
    db = folder / "wh.duckdb"
    load_files(db, [events], load_config(None), now=NOW)
    with served(db, folder) as url:
        yield url, db


# The pixel centre of a stage's row in the cohort view (the middle of its panel, where the funnel
# draws a bar of 0 as nothing), relative to the graph's top-left corner.
ROW_CENTRE = """
const gd = document.querySelector('#funnel-graph .js-plotly-plot');
const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
return [xa._offset + xa._length / 2, ya._offset + ya.l2p(arguments[0])];
"""


def test_a_click_on_the_row_of_a_stage_of_0_leads_opens_its_empty_list(server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    url, db = server
    g = Gateway(Path(db))
    last = g.facts()["last_event"].date()
    search = f"?from={(last - timedelta(days=6)).isoformat()}&to={last.isoformat()}"
    rows = run_metric(g, "funnel", MetricRequest(start=utc(last - timedelta(days=6)), end=utc(last + timedelta(days=1))))
    index = next(i for i, r in enumerate(rows) if r["reached"] == 0)
    stages = g.config().stages
    with chromium(1440, 1000) as browser:
        browser.get(url + "/funnel" + search)
        wait_for_graphs(browser, 1)
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#funnel-graph .funnellayer .point"))
        settled(browser)
        screenshot(browser, "funnel-zero-bar")
        graph = browser.find_element(By.CSS_SELECTOR, "#funnel-graph .js-plotly-plot")
        size = graph.size
        # the first stage's real bar keeps its own hover label over the click area behind it
        x, y = browser.execute_script(ROW_CENTRE, 0)
        ActionChains(browser).move_to_element_with_offset(graph, x - size["width"] / 2, y - size["height"] / 2).perform()
        label = wait(browser, lambda d: " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, "#funnel-graph .hoverlayer .hovertext")))
        assert "cohort view" in label and f"Reached: {rows[0]['reached']:,} leads of the cohort" in label
        x, y = browser.execute_script(ROW_CENTRE, index)
        ActionChains(browser).move_to_element_with_offset(graph, x - size["width"] / 2, y - size["height"] / 2).click().perform()
        wait(browser, lambda d: "/leads?" in d.current_url)
        keys = dict(parse_qsl(urlsplit(browser.current_url).query))
        assert (keys["from_stage"], keys["to_stage"], keys["which"]) == (stages[0], rows[index]["stage"], "converted")
        assert keys["from"] == search.split("from=")[1].split("&")[0]
        wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".table-count").text.startswith("0 row"))
        assert not browser.find_elements(By.CSS_SELECTOR, ".ag-row [col-id='lead_id']")
        assert severe(browser) == []
