"""The plotly.js bundle the dashboard serves (assets/plotly-funnelboard.min.js, tools/plotly-bundle).

It holds only the trace types the figures use; dcc.Graph takes the `window.Plotly` it defines
instead of fetching plotly's 4.8 MB full bundle. These tests fail when a figure starts using a
trace type the bundle lacks, or when the plotly Python package moves to another plotly.js major
version than the bundle's (then rebuild: tools/plotly-bundle/README.md).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from tests.dashboard.test_figures import DEMO_FIGURES, demo  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "assets" / "plotly-funnelboard.min.js"
BUNDLED_TRACES = {"scatter", "bar", "funnel", "waterfall", "heatmap"}  # tools/plotly-bundle/index.js


def plotly_js_version(text: str) -> str:
    return re.search(r'\.version="(\d+\.\d+\.\d+)"', text).group(1)


def test_the_bundle_is_plotly_js_of_the_plotly_package_in_use():
    full = (resources.files("plotly") / "package_data" / "plotly.min.js").read_text()[:400]
    shipped = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", full).group(1)
    bundled = plotly_js_version(BUNDLE.read_text())
    assert bundled.split(".")[0] == shipped.split(".")[0], f"bundle {bundled}, plotly ships {shipped}: rebuild it"
    assert BUNDLE.stat().st_size < 2_000_000  # a partial bundle, not the full one copied in


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEMO_FIGURES))
def test_every_figure_uses_only_bundled_trace_types(demo, name):
    fig = DEMO_FIGURES[name](demo)
    assert {t.type or "scatter" for t in fig.data} <= BUNDLED_TRACES


def test_the_bundle_registers_each_trace_type():
    index = (ROOT / "tools" / "plotly-bundle" / "index.js").read_text()
    registered = set(re.findall(r"require\('plotly\.js/lib/(\w+)'\)", index)) - {"core"}
    assert registered | {"scatter"} == BUNDLED_TRACES


def test_the_app_serves_the_bundle_on_every_page(app):
    client = app.server.test_client()
    page = client.get("/").get_data(as_text=True)
    src = re.search(r'src="([^"]*plotly-funnelboard\.min\.js[^"]*)"', page)
    assert src, "the page does not load the bundle"
    assert client.get(src.group(1)).status_code == 200
