"""No page is wider than the window, on a phone (390 px) and on a desktop (1440 px), on the demo and on
the Olist example (32-character lead ids); on a phone the filter bar and the page menu fold behind a
button each and a date picker closes after a choice. With $FUNNELBOARD_SCREENSHOTS set it saves
<page>.png (1440 px) and phone-<page>.png of every demo page, olist-… of every Olist page
(docs/screenshots is chosen from these)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.chromium import SCREENSHOTS, browser_or_fail, chromium, served, served_demo, wait
from tests.e2e.every_page import emulate_width, full_page_png, open_settled, registered_pages
from tests.e2e.test_browser import _a_lead
from tests.olist import load_olist

PHONE, DESKTOP = 390, 1440

# The widest elements when the page is wider than the window: what to fix.
_OVERFLOW = """
const w = window.innerWidth;
return [document.documentElement.scrollWidth, w,
  [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 1)
    .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + String(e.className).split(' ')[0])];
"""

# A chart's title or note (annotation) drawn past its chart's edges, where the chart clips it.
_CLIPPED = """
const out = [];
document.querySelectorAll('.js-plotly-plot').forEach(gd => {
  const box = gd.querySelector('.main-svg').getBoundingClientRect();
  gd.querySelectorAll('.gtitle, .annotation-text').forEach(t => {
    const r = t.getBoundingClientRect();
    if (r.width && (r.left < box.left - 2 || r.right > box.right + 2 || r.top < box.top - 2))
      out.push([gd.id, t.textContent.slice(0, 40), Math.round(r.left - box.left), Math.round(box.right - r.right), Math.round(r.top - box.top)]);
  });
});
return out;
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with served_demo(tmp_path_factory.mktemp("widths")) as (url, db):
        yield url, registered_pages(db, _a_lead(db))


@pytest.fixture(scope="module")
def olist(tmp_path_factory):
    browser_or_fail()
    folder = tmp_path_factory.mktemp("widths-olist")
    db = load_olist(folder / "olist.duckdb")
    lead = _a_lead(db)
    assert len(lead) == 32  # Olist's ids: what overflows a phone if anything does
    with served(db, folder) as url:
        yield url, registered_pages(db, lead)


def _too_wide(url: str, pages: list[tuple[str, str]], width: int, *, shots: str = "") -> dict:
    """The pages wider than the window at `width`, and those with a chart text cut off; with `shots` (a file-name prefix) and
    $FUNNELBOARD_SCREENSHOTS, a full-page PNG of each, phone- added at phone width."""
    wide = {}
    with chromium(width=max(width, 500), height=900) as driver:
        emulate_width(driver, width)
        for name, path in pages:
            open_settled(driver, url + path)
            scroll, inner, culprits = driver.execute_script(_OVERFLOW)
            if scroll > inner:
                wide[name] = (scroll, inner, culprits)
            clipped = driver.execute_script(_CLIPPED)
            if clipped:
                wide[name + " (chart text cut off)"] = clipped
            assert driver.execute_script("return window.innerWidth") == width
            if SCREENSHOTS:
                full_page_png(driver, Path(SCREENSHOTS) / f"{shots}{'phone-' if width == PHONE else ''}{name}.png", width)
    return wide


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_no_demo_page_is_wider_than_the_window(demo, width):
    url, pages = demo
    wide = _too_wide(url, pages, width)
    assert wide == {}, wide


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_no_olist_page_is_wider_than_the_window(olist, width):
    url, pages = olist
    wide = _too_wide(url, pages, width, shots="olist-")
    assert wide == {}, wide


def test_on_a_phone_filters_and_menu_fold_behind_a_button_and_a_date_picker_closes(demo):
    from selenium.webdriver.common.by import By

    url, _pages = demo
    with chromium(width=500, height=900) as driver:
        emulate_width(driver, PHONE)
        open_settled(driver, url + "/funnel")
        bar = driver.find_element(By.ID, "filter-bar")
        nav = driver.find_element(By.ID, "site-menu")
        assert not bar.is_displayed() and not nav.is_displayed()
        filters = driver.find_element(By.ID, "filter-panel-button")
        filters.click()
        wait(driver, lambda d: bar.is_displayed() and filters.get_attribute("aria-expanded") == "true")
        picker = driver.find_element(By.CSS_SELECTOR, "[id='{\"key\":\"to\",\"type\":\"fb-date\"}']")
        picker.click()
        day = wait(driver, lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "[role=dialog] button, [role=dialog] td") if b.text.strip() == "15"])
        day[0].click()
        wait(driver, lambda d: "to=" in d.current_url and not d.find_elements(By.CSS_SELECTOR, "[role=dialog]"))
        assert bar.is_displayed(), "choosing a filter leaves the filter panel open"
        menu = driver.find_element(By.ID, "site-menu-button")
        menu.click()
        wait(driver, lambda d: nav.is_displayed() and menu.get_attribute("aria-expanded") == "true")
        nav.find_element(By.LINK_TEXT, "Segments").click()
        wait(driver, lambda d: "/segments" in d.current_url and not nav.is_displayed())
        assert menu.get_attribute("aria-expanded") == "false"
