"""axe-core (vendored, tests/vendor/axe-core) on every page of the demo in headless Chromium: no
critical or serious finding; and every chart has a name and its numbers as a table a keyboard opens.

Measured on the 9 pages of the demo before the fix (issue 16): 27 critical (aria-allowed-attr on the
date pickers), 77 serious (aria-hidden-focus on the drop-downs, color-contrast, html-has-lang) and
117 moderate (region); after: none of any impact."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.chromium import chromium, served_demo, severe
from tests.e2e.every_page import open_settled, registered_pages
from tests.e2e.test_browser import _a_lead

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("critical", "serious")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with served_demo(tmp_path_factory.mktemp("a11y")) as (url, db), chromium() as driver:
        driver.set_script_timeout(120)
        yield url, driver, registered_pages(db, _a_lead(db))


def axe_violations(driver) -> list[dict]:
    """axe-core's violations on the current page: rule id, impact and the targets of each."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, targets: v.nodes.map(n => n.target.join(' '))}))))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', targets: [String(e)]}]));"
    )


def test_no_critical_or_serious_axe_finding_on_any_page(demo):
    url, driver, pages = demo
    assert len(pages) >= 10 and ("not-found", "/no-such-page") in pages
    found = {}
    for name, path in pages:
        open_settled(driver, url + path)
        blocking = [v for v in axe_violations(driver) if v["impact"] in BLOCKING]
        if blocking:
            found[name] = blocking
        errors = [e for e in severe(driver) if not (name == "not-found" and "status of 404" in e)]  # its own status
        assert errors == [], name
    report = "\n".join(f"{page}: {v['impact']} {v['id']} on {v['targets'][:5]}" for page, vs in found.items() for v in vs)
    assert not found, "axe-core findings:\n" + report


# Each graph: its <figure>, the figure's name, the plotly title (or the message an empty chart shows),
# the <summary> under it, and how many points the first trace drew.
_CHARTS = r"""
return [...document.querySelectorAll('.dash-graph')].map(g => {
  const fig = g.closest('figure.chart');
  const plot = g.querySelector('.js-plotly-plot');
  const t = (plot.layout && plot.layout.title && plot.layout.title.text) || '';
  const first = (plot.data || [])[0];
  const points = !first ? 0 : first.type === 'heatmap' ? first.z.length
    : Array.from(first.x || first.y || []).filter((x, i) => x !== null || (first.y || [])[i] !== null).length;
  return {id: g.id, figure: !!fig, name: fig && fig.getAttribute('aria-label'), title: t.replace(/<br\s*\/?>/gi, '; ').replace(/<[^>]*>/g, ''),
          message: !!plot.querySelector('.annotation-text') && !t, summary: !!(fig && fig.querySelector('figcaption summary')),
          points: Math.min(points, 500)};
});
"""


def test_every_chart_has_a_name_and_a_data_table_a_keyboard_opens(demo):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, driver, pages = demo
    checked = 0
    for name, path in pages:
        open_settled(driver, url + path)
        for chart in driver.execute_script(_CHARTS):
            where = f"{name} #{chart['id']}"
            assert chart["figure"] and chart["summary"], f"{where} is not in a chart <figure> with a caption"
            assert chart["name"], f"{where} has no accessible name"
            if chart["title"]:
                assert chart["name"] == " ".join(chart["title"].split()), where
            figure = driver.find_element(By.CSS_SELECTOR, f"figure.chart:has(#{chart['id']})")
            summary = figure.find_element(By.CSS_SELECTOR, "figcaption summary")
            assert summary.text == f"Data: {chart['name']}"
            driver.execute_script("arguments[0].focus()", summary)
            assert driver.switch_to.active_element == summary, f"{where}: its Data summary takes no focus"
            summary.send_keys(Keys.ENTER)
            assert figure.find_element(By.CSS_SELECTOR, "details").get_attribute("open") is not None
            rows = figure.find_elements(By.CSS_SELECTOR, ".chart-data table")
            # a trace drawn only to be clicked (the funnel's click areas) has no data to show
            assert "Click area" not in figure.find_element(By.CSS_SELECTOR, ".chart-data").text, where
            if chart["points"]:
                first = rows[0].find_elements(By.CSS_SELECTOR, "tbody tr")
                assert len(first) == chart["points"], f"{where}: {len(first)} rows for {chart['points']} points"
            else:
                assert figure.find_element(By.CSS_SELECTOR, ".chart-data").text, where
            checked += 1
    assert checked >= 10


def test_an_unknown_address_shows_the_not_found_page_with_a_link_back(demo):
    from selenium.webdriver.common.by import By

    url, driver, _pages = demo
    open_settled(driver, url + "/funnel/no-such-view?channel=referral")
    assert "Page not found" in driver.find_element(By.CSS_SELECTOR, "main h1").text
    link = driver.find_element(By.LINK_TEXT, "Back to the weekly review")
    link.click()
    open_settled(driver, driver.current_url)
    assert driver.current_url == url + "/" and driver.find_elements(By.CSS_SELECTOR, ".card")


# A count of 1,000 or more shown without its separator. Years, clock times, dates, ids (L0001234) and
# segment labels of the data ("1001-5000", "5000+") are not counts.
BARE_COUNT = re.compile(r"(?<![\w.,:/+-])(\d{4,})(?:\.\d+)?(?![\w,:/+-])")


def test_no_count_of_a_thousand_or_more_is_shown_without_its_separator(demo):
    url, driver, pages = demo
    bare, separated = {}, 0
    for name, path in pages:
        open_settled(driver, url + path)
        text = driver.execute_script(  # the page, its charts' text and their data tables opened
            "document.querySelectorAll('details').forEach(d => d.open = true);"
            "return document.body.innerText + '\\n' + [...document.querySelectorAll('svg text')].map(t => t.textContent).join('\\n');"
        )
        found = [text[max(0, m.start() - 30):m.end() + 10] for m in BARE_COUNT.finditer(text) if not 1900 <= int(m.group(1)) <= 2100]
        if found:
            bare[name] = found[:5]
        separated += len(re.findall(r"\b\d{1,3}(?:,\d{3})+\b", text))
    assert separated >= 10, "no count of a thousand or more was read: the check saw nothing"
    assert bare == {}, bare
