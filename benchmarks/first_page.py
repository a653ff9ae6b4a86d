"""First page fully drawn in a browser: headless Chromium opens the weekly review and waits until
every KPI card, the trend chart and the top movers are on screen.

Timed from `driver.get()` to the last of those, in a fresh browser profile each time (no HTTP
cache), on the real server started as a subprocess. Two servers, side by side in one run:
- cache off (FUNNELBOARD_CACHE_ROWS=0): every callback computes, as for a view nobody opened yet;
- served (cache on, as `funnelboard serve` runs): timed once /healthz says the server's warm-up
  has computed the default views; every visit in a new browser profile.

    python -m benchmarks.first_page --db PATH [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.latency import Server

CARDS = 8


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        raise RuntimeError("headless Chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


DRAWN = """
const cards = document.querySelectorAll('.card .card-value').length;
const trend = Array.from(document.querySelectorAll('.js-plotly-plot')).filter(g => g.querySelector('.gtitle, .annotation-text')).length;
const movers = document.querySelectorAll('#weekly-movers .panel-title').length;
return cards >= %d && trend >= 1 && movers >= 1;
""" % CARDS


def time_first_page(base: str, timeout: float = 300) -> float:
    """Seconds from navigation to the weekly review fully drawn, in a new browser."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver()
    try:
        started = time.perf_counter()
        driver.get(base + "/")
        WebDriverWait(driver, timeout, poll_frequency=0.02).until(lambda d: d.execute_script(DRAWN))
        return time.perf_counter() - started
    finally:
        driver.quit()


def run_first_page(db: Path, repeats: int = 3) -> dict:
    out: dict = {}
    with Server(Path(db), cache=False) as server:
        cold = [time_first_page(server.base) for _ in range(repeats)]
        out["cold_s"] = statistics.median(cold)
        out["cold_all_s"] = cold
    with Server(Path(db), cache=True, wait_warm=True) as server:
        warm = [time_first_page(server.base) for _ in range(repeats)]
        out["warm_up_s"] = server.warm_seconds
        out["warm_s"] = statistics.median(warm)
        out["warm_all_s"] = warm
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    res = run_first_page(args.db, args.repeats)
    print(f"first page (weekly review) fully drawn: cache off median {res['cold_s']:.2f} s "
          f"({', '.join(f'{x:.2f}' for x in res['cold_all_s'])}); served (after a {res['warm_up_s']:.1f} s warm-up): "
          f"median {res['warm_s']:.2f} s ({', '.join(f'{x:.2f}' for x in res['warm_all_s'])}); budget 2 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
