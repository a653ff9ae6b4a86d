"""Headless Chromium for the browser tests: a served warehouse, a driver, waits and screenshots.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them). Outside CI a machine
without them skips these tests; with CI=true a missing browser fails the run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def browser_or_fail() -> None:
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


@contextlib.contextmanager
def served(db: Path, folder: Path) -> Iterator[str]:
    """`funnelboard serve` of a warehouse in a real process, on a free port: its base URL."""
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
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@contextlib.contextmanager
def served_demo(folder: Path, *, n_leads: int = 3000, seed: int = 13, dirty: bool = True) -> Iterator[tuple[str, Path]]:
    """A generated demo warehouse in `folder`, served by `funnelboard serve`: (base URL, warehouse)."""
    from funnelboard.core.config import load_config
    from funnelboard.etl.generate import generate
    from funnelboard.warehouse.pipeline import load_files
    from tests.conftest import NOW

    browser_or_fail()
    events = generate(out=folder / "events.csv", n_leads=n_leads, seed=seed, dirty=dirty).path
    db = folder / "wh.duckdb"
    load_files(db, [events], load_config(None), now=NOW)
    with served(db, folder) as url:
        yield url, db


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000):
    """A headless Chromium driver that logs the browser console."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={width},{height}", f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_graphs(driver, count: int) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    # A graph its callback has drawn has a title or a message; the placeholder Dash draws first has neither.
    drawn = "return Array.from(document.querySelectorAll('.js-plotly-plot')).filter(g => g.querySelector('.gtitle, .annotation-text')).length"
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(drawn) >= count)


def severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


SCREENSHOTS = os.environ.get("FUNNELBOARD_SCREENSHOTS")  # a folder: the page tests save full-page screenshots there


def screenshot(driver, name: str) -> None:
    """A full-page PNG of the current page into $FUNNELBOARD_SCREENSHOTS (docs/screenshots is made this way)."""
    if not SCREENSHOTS:
        return
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], max(size["height"], min(height + 40, 4000)))
    driver.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))
    driver.set_window_size(size["width"], size["height"])


def wait(driver, condition, timeout: float = 30):
    """Until condition(driver) is truthy; an element redrawn while being read is looked up again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def settled(driver) -> None:
    """The layout drawn and no callback in flight: Dash's renderer has mounted and replaced its
    "Loading..." placeholder with the layout (right after a page load neither has happened, and no
    callback is in flight yet), Dash marks no loading component, and it has no pending request."""
    from selenium.webdriver.common.by import By

    drawn = ("const root = document.getElementById('react-entry-point');"
             "return !!root && root.childElementCount > 0 && !document.querySelector('._dash-loading')")
    wait(driver, lambda d: d.execute_script(drawn) and not d.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading=true]")
          and d.execute_script("return !document.querySelector('._dash-loading-callback')"))


