"""The marketer's journey in headless Chromium: compare channels last quarter, cross them by industry in
the matrix, open one cell's leads; every number equals `funnelboard query` for the same filters.

Clicks: before issue 16, 8 clicks and 2 typed dates (from/to pickers, then the segment controls and
a flat list of crossings); now 6 clicks and no typed date (period, "Last quarter", Segments,
"Crossed with", "industry", a cell). The test counts the clicks it makes.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlparse

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from tests.e2e.chromium import chromium, screenshot, served_demo, settled, severe, wait, wait_for_graphs

CLICKS_BEFORE, TYPED_BEFORE = 8, 2


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_demo(tmp_path_factory.mktemp("marketer"), n_leads=4000, seed=21, dirty=False) as (url, db):
        yield url, db


def cli(db, *args) -> list[dict]:
    result = CliRunner().invoke(main, ["query", *args, "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


class Clicks:
    """Clicks made by the journey, counted where they happen."""

    def __init__(self, driver):
        self.driver, self.count = driver, 0

    def element(self, element) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).move_to_element(element).click().perform()
        self.count += 1

    def at(self, element, dx: float, dy: float) -> None:
        """A click at an offset from the element's centre (a heatmap cell has no element of its own)."""
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).move_to_element_with_offset(element, int(dx), int(dy)).click().perform()
        self.count += 1


def _option(driver, text: str):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.XPATH, f"//*[@role='option' or @role='listbox']//*[normalize-space(text())='{text}']")
    return found[-1] if found else None


def _control(driver, kind: str, key: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"[id='{{\"key\":\"{key}\",\"type\":\"{kind}\"}}']")


def test_marketer_compares_channels_last_quarter_and_crosses_them_by_industry(server):
    from selenium.webdriver.common.by import By

    url, db = server
    with chromium(1440, 1000) as driver:
        clicks = Clicks(driver)
        driver.get(url + "/")
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "[id='{\"key\":\"period\",\"type\":\"fb-period\"}']"))
        settled(driver)
        # 1-2: the preset
        clicks.element(_control(driver, "fb-period", "period"))
        wait(driver, lambda d: _option(d, "Last quarter"))
        clicks.element(_option(driver, "Last quarter"))
        wait(driver, lambda d: "period=last_quarter" in d.current_url)
        resolved = wait(driver, lambda d: "as of" in d.find_element(By.CSS_SELECTOR, ".filter-resolved").text and d.find_element(By.CSS_SELECTOR, ".filter-resolved").text)
        # 3: the segments page, by the navigation (which carries the preset)
        settled(driver)
        clicks.element(driver.find_element(By.LINK_TEXT, "Segments"))
        wait(driver, lambda d: urlparse(d.current_url).path == "/segments" and "period=last_quarter" in d.current_url)
        wait_for_graphs(driver, 1)
        settled(driver)
        by_channel = cli(db, "segment_conversion", "--period", "last_quarter", "--segment", "channel")
        for row in by_channel:  # every channel's rate as the CLI has it, on the page's axis labels
            wait(driver, lambda d, r=row: r["channel"] in d.find_element(By.ID, "segments-conversion").text)
        # 4-5: crossed with industry
        clicks.element(_control(driver, "fb-param", "segment2"))
        wait(driver, lambda d: _option(d, "industry"))
        clicks.element(_option(driver, "industry"))
        wait(driver, lambda d: "segment2=industry" in d.current_url)
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#segments-conversion .heatmaplayer"))
        settled(driver)
        screenshot(driver, "journey-marketer-matrix")
        crossed = cli(db, "segment_conversion", "--period", "last_quarter", "--segment", "channel", "--segment2", "industry")
        # the matrix's first row and column are the channel and industry with most leads
        totals = lambda col: sorted({r[col] for r in crossed}, key=lambda v: (-sum(x["n"] for x in crossed if x[col] == v), v))  # noqa: E731
        rows, cols = totals("channel"), totals("industry")
        cell = next(r for r in crossed if r["channel"] == rows[0] and r["industry"] == cols[0])
        texts = driver.find_element(By.ID, "segments-conversion").text
        assert f"n={cell['n']:,}" in texts
        # 6: click that cell (the plot area split into the matrix's rows and columns)
        area = driver.find_element(By.CSS_SELECTOR, "#segments-conversion .nsewdrag")
        box = area.rect
        clicks.at(area, -box["width"] / 2 + box["width"] / (2 * len(cols)), -box["height"] / 2 + box["height"] / (2 * len(rows)))
        wait(driver, lambda d: urlparse(d.current_url).path == "/leads")
        query = dict(parse_qsl(urlparse(driver.current_url).query))
        assert query["channel"] == rows[0] and query["industry"] == cols[0] and query["period"] == "last_quarter"
        wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, ".table-count").text.startswith(f"{cell['n']:,} row"))
        listed = cli(db, "leads", "--period", "last_quarter", "--filter", f"channel={rows[0]}", "--filter", f"industry={cols[0]}")
        assert len(listed) == cell["n"] and sum(r["converted"] for r in listed) == cell["converted"]
        chips = [c.text for c in driver.find_elements(By.CSS_SELECTOR, ".chip")]
        assert any(c.startswith("channel:") for c in chips) and any(c.startswith("industry:") for c in chips)
        screenshot(driver, "journey-marketer-leads")
        assert severe(driver) == []
    assert resolved.endswith(")") and "as of" in resolved
    assert clicks.count == 6 < CLICKS_BEFORE, clicks.count
    print(f"marketer journey: {CLICKS_BEFORE} clicks + {TYPED_BEFORE} typed dates before, {clicks.count} clicks + 0 typed now")
