"""An address no page answers gets HTTP 404 and the shell, whose router shows the not-found page with
a link back to the review; every page's address, its drill-downs and the server's own routes keep
their status."""

from __future__ import annotations

import dash
import pytest

PAGES = ["/", "/funnel", "/segments?segment=channel", "/time-in-stage", "/disqualifiers", "/stalled", "/leads", "/data-quality", "/lead/L00001", "/funnel/"]


@pytest.mark.parametrize("path", ["/nope", "/nope/x.js", "/lead/", "/funnel/more", "/404", "/export", "/Funnel"])
def test_an_unknown_address_answers_404_with_the_shell(app, path):
    with app.server.test_client().get(path) as response:
        body = response.get_data(as_text=True)
        assert response.status_code == 404, path
        assert 'id="react-entry-point"' in body and '<html lang="en">' in body
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_200(app, path):
    with app.server.test_client().get(path) as response:
        assert response.status_code == 200, path


@pytest.mark.parametrize("path,status", [("/healthz", 200), ("/export/leads.csv", 200), ("/export/nope.csv", 404),
                                         ("/_dash-layout", 200), ("/_dash-dependencies", 200), ("/assets/style.css", 200),
                                         ("/assets/nope.css", 404)])
def test_the_server_routes_keep_their_status(app, path, status):
    with app.server.test_client().get(path) as response:
        assert response.status_code == status, path


def test_the_registered_pages_all_answer_200(app):
    client = app.server.test_client()
    for page in dash.page_registry.values():
        path = page["path_template"].replace("<lead_id>", "L00001") if page["path_template"] else page["path"]
        expected = 404 if page["module"].endswith(".not_found_404") else 200
        assert client.get(path).status_code == expected, path


def test_the_not_found_page_links_back_to_the_review(app):
    page = next(p for p in dash.page_registry.values() if p["module"].endswith(".not_found_404"))
    assert page.get("hidden"), "the not-found page is not in the navigation"
    links = [c for c in _walk(page["layout"]()) if type(c).__name__ == "Link"]
    assert [link.href for link in links] == ["/"]
    assert "not found" in str(page["layout"]()).lower()


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            yield from _walk(child)
