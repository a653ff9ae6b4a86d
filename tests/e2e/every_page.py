"""Every page of a served warehouse, opened and settled: for the checks that must hold on all of them
(accessibility, widths). The pages come from dash.page_registry, so a new page is checked too."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from tests.e2e.chromium import settled, wait

# Drawn: each graph has its title or message and its <figure> its name; each grid its rows or its
# "no rows"; the filter bar and the page are in.
_SETTLED = """
const plots = [...document.querySelectorAll('.dash-graph')];
const charts = [...document.querySelectorAll('figure.chart')];
const grids = [...document.querySelectorAll('.ag-root-wrapper')];
const content = document.getElementById('_pages_content');
return !!content && content.children.length > 0 && document.getElementById('filter-bar').children.length > 0
  && plots.every(g => g.querySelector('.gtitle, .annotation-text'))
  && charts.length === plots.length && charts.every(f => f.getAttribute('aria-label'))
  && grids.every(g => g.querySelector('.ag-row, .ag-overlay-no-rows-center'));
"""


def registered_pages(db: Path, lead: str) -> list[tuple[str, str]]:
    """(name, path) of every page the app registers, the lead page on `lead`, the not-found page on an
    unknown address."""
    import dash

    from funnelboard.dashboard.app import create_app

    create_app(db)  # registers the pages in this process
    pages = []
    for page in sorted(dash.page_registry.values(), key=lambda p: (p.get("order") is None, p.get("order") or 0, p["path"])):
        name = page["module"].rsplit(".", 1)[-1].replace("_", "-")
        if page["module"].endswith(".not_found_404"):
            pages.append(("not-found", "/no-such-page"))
        elif page["path_template"]:
            pages.append((name, page["path_template"].replace("<lead_id>", quote(lead, safe=""))))
        else:
            pages.append((name, page["path"]))
    return pages


def open_settled(driver, url: str) -> None:
    driver.get(url)
    wait(driver, lambda d: d.execute_script(_SETTLED), timeout=60)
    settled(driver)
    wait(driver, lambda d: d.execute_script(_SETTLED), timeout=60)


def emulate_width(driver, width: int, height: int = 900) -> None:
    """A viewport `width` CSS pixels wide (headless Chromium's window is at least 500 wide; a phone is
    390), as a phone when narrow: touch, and the page's viewport meta honoured."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500})


def full_page_png(driver, path: Path, width: int) -> None:
    """The whole page (up to 4,000 px tall) at `width` as a PNG."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    emulate_width(driver, width, min(max(height, 600), 4000))
    driver.save_screenshot(str(path))
    emulate_width(driver, width)
