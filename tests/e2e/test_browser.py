"""End to end in headless Chromium: the real server, the real pages, no console errors.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them). Outside CI a machine
without them skips these tests; with CI=true a missing browser fails the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from etl.generate import generate
from etl.load import load_files
from funnelboard.config import load_config
from tests.conftest import NOW

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _browser_or_fail() -> None:
    if CHROMIUM and DRIVER:
        return
    message = "headless Chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _browser_or_fail()
    folder = tmp_path_factory.mktemp("e2e")
    events = generate(out=folder / "events.csv", n_leads=3000, seed=13, dirty=True).path
    db = folder / "wh.duckdb"
    load_files(db, [events], load_config(None), now=NOW)
    port = _free_port()
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "funnelboard", "serve", "--db", str(db), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            try:
                proc.wait(timeout=0.1)  # the poll interval, and an early exit is an error
                raise RuntimeError(f"the server exited: {(folder / 'server.log').read_text()}")
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise
    yield f"http://127.0.0.1:{port}", db
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def browser(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _wait_for_graphs(driver, count: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= count
    )


def _severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.parametrize("path,graphs", [("/", 1), ("/funnel", 2), ("/segments", 2), ("/time-in-stage", 1), ("/disqualifiers", 2)])
def test_every_page_renders_without_console_errors(server, browser, path, graphs):
    from selenium.webdriver.common.by import By

    url, _db = server
    browser.get(url + path)
    _wait_for_graphs(browser, graphs)
    assert "rows quarantined" in browser.find_element(By.CSS_SELECTOR, ".badge").text
    assert _severe(browser) == []


def test_weekly_cards_show_the_metric(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from warehouse.gateway import Gateway
    from warehouse.metrics import MetricRequest, run_metric

    url, db = server
    browser.get(url + "/?channel=referral")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".card"))
    rows = run_metric(Gateway(Path(db)), "weekly_kpis", MetricRequest(filters=(("channel", "referral"),)))
    last = rows[-1]["week"]
    sqls = next(r["value"] for r in rows if r["week"] == last and r["kpi"] == "reached_sql")
    cards = {c.find_element(By.CSS_SELECTOR, ".card-label").text.lower(): c.find_element(By.CSS_SELECTOR, ".card-value").text
             for c in browser.find_elements(By.CSS_SELECTOR, ".card")}
    assert cards["reached sql"] == f"{sqls:,}"
