"""The ops journey in headless Chromium: from /stalled to the CSV of one owner's stalled proposals.

Before the board (issue 16), ops exported the whole stalled list of an owner and filtered the
proposal stage in a spreadsheet: in the app, 3 clicks (owner dropdown, owner, Export CSV) and then
the spreadsheet's filter. Now: 2 clicks, the board cell and Export CSV; this test counts them.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import Context, MetricRequest
from funnelboard.warehouse.metrics.stalled import stalled_board
from tests.e2e.chromium import chromium, screenshot, served_demo, settled, severe, wait

STAGE = "proposal"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_demo(tmp_path_factory.mktemp("ops")) as (url, db):
        yield url, db


def cli_csv(db, *filters: str) -> str:
    args = [a for f in filters for a in ("--filter", f)]
    return subprocess.run([sys.executable, "-m", "funnelboard", "query", "stalled", *args, "--format", "csv", "--db", str(db)],
                          capture_output=True, text=True, check=True).stdout


def test_ops_journey_board_cell_to_the_csv_of_its_leads(server):
    from selenium.webdriver.common.by import By

    url, db = server
    # the owner with the most stalled proposals (an owner column of the board, not "Other")
    board = stalled_board(Context(Gateway(db)), MetricRequest(), owner_columns=12)
    cell = max((r for r in board if r["stage"] == STAGE and r["owner"] not in ("(all)", "(other)", "(none)")),
               key=lambda r: (r["stalled"], r["owner"]))
    owner, expected = cell["owner"], cell["stalled"]
    clicks = 0
    with chromium(1440, 1000) as browser:
        browser.get(url + "/stalled")
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".stalled-board a.board-link"))
        settled(browser)

        def the_cell(d):
            for link in d.find_elements(By.CSS_SELECTOR, ".stalled-board a.board-link"):
                query = dict(parse_qsl(urlsplit(link.get_attribute("href")).query))
                if query == {"stage": STAGE, "owner": owner}:
                    return link
            return False

        link = wait(browser, the_cell)
        assert link.find_element(By.CSS_SELECTOR, ".board-count").text == f"{expected:,}"
        browser.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", link)
        link.click()
        clicks += 1
        wait(browser, lambda d: f"stage={STAGE}" in d.current_url and "owner=" in d.current_url)
        count = f"{expected:,} row" + ("" if expected == 1 else "s")
        wait(browser, lambda d: any(e.text == count for e in d.find_elements(By.CSS_SELECTOR, ".table-count")))
        wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".ag-center-cols-container .ag-row")) == expected)
        settled(browser)
        # the cell is marked, and the list's cells read as words and whole numbers
        assert browser.find_elements(By.CSS_SELECTOR, ".board-chosen a.board-link")
        new_cells = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".ag-row [col-id='newly_stalled']")}
        assert new_cells and new_cells <= {"Yes", "No"}
        ages = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".ag-row [col-id='age_days']")]
        assert ages and all(a.replace(",", "").isdigit() for a in ages)
        # the amount column is past the window's right edge: scroll the grid to it (the grid draws visible columns only)
        browser.execute_script("document.querySelectorAll('.ag-center-cols-viewport, .ag-body-horizontal-scroll-viewport')"
                               ".forEach(v => { v.scrollLeft = v.scrollWidth; });")
        wait(browser, lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, ".ag-row [col-id='amount']") if e.text])
        amounts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".ag-row [col-id='amount']") if e.text]
        assert any("," in a for a in amounts), amounts  # demo proposals are worth thousands
        assert all(a.startswith("USD ") for a in amounts), amounts  # the demo config's [attributes] currency
        ids = browser.find_elements(By.CSS_SELECTOR, ".ag-row [col-id='lead_id']")
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(browser).move_to_element(ids[0]).perform()
        wait(browser, lambda d: ids[0].get_attribute("title") == ids[0].text or
             any(e.get_attribute("title") == ids[0].text for e in ids[0].find_elements(By.CSS_SELECTOR, "*")))
        screenshot(browser, "journey-ops")

        export = browser.find_element(By.XPATH, "//a[normalize-space(text())='Export CSV']")
        wait(browser, lambda d: f"stage={STAGE}" in export.get_attribute("href"))
        href = export.get_attribute("href")
        clicks += 1  # the Export CSV link: its file is the GET below
        assert not severe(browser)

    answer = requests.get(href, timeout=60)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == expected > 0
    assert {(r["stage"], r["owner"]) for r in rows} == {(STAGE, owner)}
    assert answer.text == cli_csv(db, f"stage={STAGE}", f"owner={owner}")
    # every stalled proposal of that owner, none left out
    everything = list(csv.DictReader(io.StringIO(cli_csv(db))))
    assert sorted(r["lead_id"] for r in rows) == sorted(r["lead_id"] for r in everything if (r["stage"], r["owner"]) == (STAGE, owner))
    assert clicks == 2
