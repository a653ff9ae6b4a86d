"""End to end in headless Chromium: the real server, the real pages, no console errors.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them). Outside CI a machine
without them skips these tests; with CI=true a missing browser fails the run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.e2e.chromium import chromium, screenshot, served_demo, settled, severe, wait, wait_for_graphs


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_demo(tmp_path_factory.mktemp("e2e")) as (url, db):
        yield url, db


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as driver:
        yield driver


def _open_first_lead(driver) -> str:
    """Click the first lead id of the grid once it has settled; returns the lead id clicked."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    settled(driver)

    def click(d):
        cells = d.find_elements(By.CSS_SELECTOR, ".ag-row [col-id='lead_id']")
        if not cells or not cells[0].text:
            return False
        lead = cells[0].text
        cells[0].click()
        return lead

    # A grid redrawn between finding a cell and clicking it raises StaleElementReference: look again.
    return WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(click)


def _a_lead(db) -> str:
    from funnelboard.warehouse.gateway import Gateway
    from funnelboard.warehouse.metrics import MetricRequest, run_metric

    return run_metric(Gateway(Path(db)), "leads", MetricRequest(which="converted"))[0]["lead_id"]


PAGES = [
    ("weekly", "/", 1, ".mover-list li"),
    ("funnel", "/funnel", 3, None),
    ("segments", "/segments", 2, None),
    ("time-in-stage", "/time-in-stage", 3, None),
    ("disqualifiers", "/disqualifiers", 2, None),
    ("stalled", "/stalled", 0, ".ag-row"),
    ("leads", "/leads", 0, ".ag-row"),
    ("lead", "/lead/{lead}", 1, ".ag-row"),
    ("data-quality", "/data-quality", 0, ".ag-row"),
]


@pytest.mark.parametrize("name,path,graphs,rows", PAGES, ids=[p[0] for p in PAGES])
def test_every_page_renders_without_console_errors(server, browser, name, path, graphs, rows):
    from selenium.webdriver.common.by import By

    url, db = server
    browser.get(url + path.format(lead=_a_lead(db)))
    wait_for_graphs(browser, graphs)
    if rows:
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, rows))
    settled(browser)
    assert "rows quarantined" in browser.find_element(By.CSS_SELECTOR, ".badge").text
    if name != "data-quality":  # its clean-state notes use the same style
        shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".empty")]
        assert shown == [], f"{name} shows a message instead of its content: {shown}"
    if name == "weekly":
        assert len(browser.find_elements(By.CSS_SELECTOR, ".card")) >= 8
    assert severe(browser) == []
    screenshot(browser, name)


def test_weekly_cards_show_the_metric(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from funnelboard.warehouse.gateway import Gateway
    from funnelboard.warehouse.metrics import MetricRequest, run_metric

    url, db = server
    browser.get(url + "/?channel=referral")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".card"))
    rows = run_metric(Gateway(Path(db)), "weekly_kpis", MetricRequest(filters=(("channel", "referral"),)))
    last = rows[-1]["week"]
    sqls = next(r["value"] for r in rows if r["week"] == last and r["kpi"] == "reached_sql")
    cards = {c.find_element(By.CSS_SELECTOR, ".card-label").text.lower(): c.find_element(By.CSS_SELECTOR, ".card-value").text
             for c in browser.find_elements(By.CSS_SELECTOR, ".card")}
    assert cards["reached sql"] == f"{sqls:,}"


def _choice(driver, key: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"[id='{{\"key\":\"{key}\",\"type\":\"fb-choice\"}}']")


def _card_values(driver) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    return {c.find_element(By.CSS_SELECTOR, ".card-label").text.lower(): c.find_element(By.CSS_SELECTOR, ".card-value").text.split("\n")[0]
            for c in driver.find_elements(By.CSS_SELECTOR, ".card")}


def _weekly_sqls(db, filters=()) -> str:
    from funnelboard.warehouse.gateway import Gateway
    from funnelboard.warehouse.metrics import MetricRequest, run_metric

    rows = run_metric(Gateway(Path(db)), "weekly_kpis", MetricRequest(filters=filters))
    last = rows[-1]["week"]
    return f"{next(r['value'] for r in rows if r['week'] == last and r['kpi'] == 'reached_sql'):,}"


def test_a_filter_writes_the_url_redraws_and_back_undoes_it(server, browser):
    from selenium.webdriver.common.by import By

    url, db = server
    browser.get(url + "/")
    wait(browser, lambda d: _card_values(d).get("reached sql") == _weekly_sqls(db))
    _choice(browser, "channel").click()
    wait(browser, lambda d: [o for o in d.find_elements(By.XPATH, "//*[@role='option' or @role='listbox']//*[normalize-space(text())='referral']")])
    browser.find_elements(By.XPATH, "//*[@role='option' or @role='listbox']//*[normalize-space(text())='referral']")[-1].click()
    wait(browser, lambda d: "channel=referral" in d.current_url)
    expected = _weekly_sqls(db, (("channel", "referral"),))
    wait(browser, lambda d: _card_values(d).get("reached sql") == expected)
    nav = browser.find_element(By.LINK_TEXT, "Funnel").get_attribute("href")
    assert nav.endswith("/funnel?channel=referral"), "the navigation carries the filter"
    browser.back()
    wait(browser, lambda d: "channel" not in d.current_url)
    wait(browser, lambda d: _card_values(d).get("reached sql") == _weekly_sqls(db))
    wait(browser, lambda d: _choice(d, "channel").text.strip() == "all")
    assert severe(browser) == []


def test_bad_values_in_the_address_are_named_under_the_bar_and_stay_there(server, browser):
    from selenium.webdriver.common.by import By

    url, _db = server
    browser.get(url + "/funnel?window=%C2%B2&from=2026-99-99&nope=1")
    wait_for_graphs(browser, 1)
    settled(browser)
    line = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".filter-problems").text)
    assert line.startswith("Ignored in the address:")
    for named in ("Window '²'", "From '2026-99-99' is not a date", "'nope' is not a filter"):
        assert named in line, line
    assert "from=2026-99-99" in browser.current_url, "the bar leaves a date it could not read in the address"
    assert severe(browser) == []


def test_the_csv_export_downloads_what_the_cli_prints(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url, db = server
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    browser.get(url + "/stalled?channel=referral")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".ag-row"))
    link = "//a[normalize-space(text())='Export CSV']"
    wait(browser, lambda d: "channel=referral" in d.find_element(By.XPATH, link).get_attribute("href"))  # the link carries the view
    browser.find_element(By.XPATH, link).click()
    target = tmp_path / "stalled.csv"
    wait(browser, lambda d: target.exists() and not list(tmp_path.glob("*.crdownload")) and target.stat().st_size > 0)
    cli = subprocess.run(
        [sys.executable, "-m", "funnelboard", "query", "stalled", "--filter", "channel=referral", "--format", "csv", "--db", str(db)],
        capture_output=True, text=True, check=True,
    )
    assert target.read_text() == cli.stdout
    assert cli.stdout.count("\n") > 2


def test_a_lead_cell_opens_the_lead_and_its_timeline(server, browser):
    from selenium.webdriver.common.by import By

    url, db = server
    browser.get(url + "/leads?which=converted")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".ag-row [col-id='lead_id']"))
    lead = _open_first_lead(browser)
    wait(browser, lambda d: f"/lead/{lead}" in d.current_url)
    wait_for_graphs(browser, 1)
    wait(browser, lambda d: lead in d.find_element(By.CSS_SELECTOR, ".page-title").text)
    assert severe(browser) == []


def test_a_funnel_bar_drills_to_its_leads_and_then_to_a_lead(server, browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from funnelboard.warehouse.gateway import Gateway
    from funnelboard.warehouse.metrics import MetricRequest, run_metric

    url, db = server
    browser.get(url + "/funnel")
    wait_for_graphs(browser, 2)
    stage_index = 2  # the third funnel stage (sql in the default config)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#funnel-graph .funnellayer .point path")) > stage_index)
    settled(browser)

    def click_bar(d):
        bar = d.find_elements(By.CSS_SELECTOR, "#funnel-graph .funnellayer .point path")[stage_index]
        ActionChains(d).move_to_element(bar).click().perform()
        return True

    # A figure redrawn between finding the bar and clicking it raises StaleElementReference: look again.
    WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(click_bar)
    wait(browser, lambda d: "/leads?" in d.current_url)
    funnel = run_metric(Gateway(Path(db)), "funnel", MetricRequest())
    expected = funnel[stage_index]["reached"]
    assert f"to_stage={funnel[stage_index]['stage']}" in browser.current_url and "which=converted" in browser.current_url
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".table-count").text.startswith(f"{expected:,} row"))
    lead = _open_first_lead(browser)
    wait(browser, lambda d: f"/lead/{lead}" in d.current_url)
    wait(browser, lambda d: lead in d.find_element(By.CSS_SELECTOR, ".page-title").text)
    browser.back()
    wait(browser, lambda d: "/leads?" in d.current_url)
    assert severe(browser) == []


def test_a_load_while_the_app_runs_shows_up_after_the_publish(server, browser, tmp_path):
    """Last in this module: it publishes a new warehouse under the running server."""
    from selenium.webdriver.common.by import By

    from funnelboard.warehouse.gateway import Gateway

    url, db = server
    browser.get(url + "/")
    before = _weekly_sqls(db)
    wait(browser, lambda d: _card_values(d).get("reached sql") == before)
    quarantined_before = Gateway(Path(db)).query("select count(*) from quarantine").rows[0][0]
    more = generate(out=tmp_path / "more.csv", n_leads=1500, seed=77, dirty=True).path
    load_files(Path(db), [more], load_config(None), now=NOW)
    quarantined = Gateway(Path(db)).query("select count(*) from quarantine").rows[0][0]
    assert quarantined > quarantined_before
    browser.refresh()
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".badge").text == f"{quarantined:,} rows quarantined")
    after = _weekly_sqls(db)
    wait(browser, lambda d: _card_values(d).get("reached sql") == after)
    assert severe(browser) == []
