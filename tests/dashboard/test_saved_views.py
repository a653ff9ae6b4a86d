"""Saved views: named addresses per user in a file next to the warehouse, written whole with mode
0600; bad names and foreign addresses refused in one sentence; a damaged file never overwritten;
a saved view cannot widen a scoped user's scope."""

from __future__ import annotations

import json
import stat
import threading

import pytest

from funnelboard.core import saved_views as sv
from funnelboard.core.errors import UserError


@pytest.fixture
def path(tmp_path):
    return sv.views_path(tmp_path / "wh.duckdb")


def test_views_are_saved_per_user_sorted_by_name_and_the_file_is_private(path):
    sv.save(path, "maya", "  Q3 referral ", "/segments?period=last_quarter&channel=referral")
    sv.save(path, "maya", "apac", "/funnel?region=APAC")
    sv.save(path, "", "everyone", "/")
    assert sv.views_of(path, "maya") == [("apac", "/funnel?region=APAC"), ("Q3 referral", "/segments?period=last_quarter&channel=referral")]
    assert sv.views_of(path, "") == [("everyone", "/")] and sv.views_of(path, "tom") == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".views-")]  # no temporary file left
    sv.save(path, "maya", "apac", "/funnel?region=EMEA")  # the same name replaces
    assert dict(sv.views_of(path, "maya"))["apac"] == "/funnel?region=EMEA"
    assert sv.remove(path, "maya", "apac") and not sv.remove(path, "maya", "apac")
    assert sv.remove(path, "maya", "Q3 referral") and "maya" not in sv.read(path)


def test_a_write_that_fails_half_way_leaves_the_old_file_whole_and_no_temporary_file(path, monkeypatch):
    sv.save(path, "", "kept", "/funnel")
    before = path.read_bytes()

    def broken_dump(obj, fh, **kwargs):
        fh.write('{"version": 1, "us')  # half a file reaches the temporary file, then the disk fills
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sv.json, "dump", broken_dump)
    with pytest.raises(OSError):
        sv.save(path, "", "lost", "/leads")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, f".{path.name}.lock"])


def test_concurrent_saves_of_many_threads_all_land(path):
    names = [f"view {i}" for i in range(40)]
    threads = [threading.Thread(target=sv.save, args=(path, f"user{i % 4}", name, f"/leads?page={i}")) for i, name in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(name for u in range(4) for name, _a in sv.views_of(path, f"user{u}")) == sorted(names)


@pytest.mark.parametrize("name, says", [
    ("", "give the view a name"), ("   ", "give the view a name"), ("x" * 61, "at most 60 characters"),
    ("tab\there", "control or invisible"), ("zero\u200bwidth", "control or invisible"),
])
def test_a_bad_name_is_refused_in_one_sentence_and_nothing_is_written(path, name, says):
    with pytest.raises(UserError, match=says):
        sv.save(path, "", name, "/")
    assert not path.exists()


@pytest.mark.parametrize("address", ["https://evil.example/", "//evil.example/x", "funnel", "/x#frag", "/a\\b", "/" + "a" * 2000, "/\x00"])
def test_only_an_address_of_this_dashboard_is_saved(path, address):
    with pytest.raises(UserError):
        sv.save(path, "", "v", address)


def test_a_user_holds_at_most_max_views(path, monkeypatch):
    monkeypatch.setattr(sv, "MAX_VIEWS", 2)
    sv.save(path, "", "a", "/")
    sv.save(path, "", "b", "/")
    sv.save(path, "", "b", "/funnel")  # replacing is no new view
    with pytest.raises(UserError, match="remove one first"):
        sv.save(path, "", "c", "/")


@pytest.mark.parametrize("text", ["{not json", json.dumps({"version": 2, "users": {}}), json.dumps({"version": 1, "users": {"u": {"n": 3}}}), "[]"])
def test_a_damaged_file_is_refused_in_one_sentence_and_never_overwritten(path, text):
    path.write_text(text)
    with pytest.raises(UserError, match="fix or remove it"):
        sv.views_of(path, "")
    with pytest.raises(UserError, match="fix or remove it"):
        sv.save(path, "", "v", "/")
    assert path.read_text() == text


def _links(children) -> list[tuple[str, str]]:
    from dash import dcc

    found = []

    def walk(node):
        if isinstance(node, dcc.Link):
            found.append((node.children, node.href))
        kids = getattr(node, "children", None)
        for child in kids if isinstance(kids, list) else [kids] if kids is not None and not isinstance(kids, str) else []:
            walk(child)

    walk(children)
    return found


@pytest.fixture
def fresh_views(db):
    """The shared demo warehouse without saved views, before and after the test."""
    sv.views_path(db).unlink(missing_ok=True)
    yield sv.views_path(db)
    sv.views_path(db).unlink(missing_ok=True)


def _click_save(app, monkeypatch, pathname, search, name, user=None):
    from dash._callback_context import context_value
    from dash._utils import AttributeDict
    from flask import g

    from funnelboard.dashboard import saved_views as page

    with app.server.test_request_context():
        if user is not None:
            g.funnelboard_user = user
        token = context_value.set(AttributeDict(triggered_inputs=[{"prop_id": f"{page.SAVE}.n_clicks", "value": 1}]))
        try:
            return page.update(pathname, 1, name, search)
        finally:
            context_value.reset(token)


def test_the_header_saves_the_current_address_and_lists_it_as_a_link(app, fresh_views, monkeypatch):
    listed, message = _click_save(app, monkeypatch, "/segments", "?segment=channel&period=last_quarter", "Channels last quarter")
    assert message == "Saved “Channels last quarter”."
    assert ("Channels last quarter", "/segments?segment=channel&period=last_quarter") in _links(listed)
    _listed, message = _click_save(app, monkeypatch, "/no-such-page", "", "nowhere")
    assert message == "This address is no page of the dashboard, so it cannot be saved."
    _listed, message = _click_save(app, monkeypatch, "/funnel", "", "")
    assert message == "Give the view a name first."


def test_each_user_sees_only_their_views_and_a_saved_view_cannot_widen_a_scope(app, db, fresh_views, monkeypatch):
    from urllib.parse import quote_plus

    from flask import g

    import funnelboard.dashboard.pages.leads as leads_page
    from funnelboard.core.accounts import User
    from funnelboard.warehouse.gateway import Gateway
    from tests.dashboard.test_lists import listed

    owners = [r[0] for r in Gateway(db).query("select owner from fct_leads where owner is not null group by 1 order by count(*) desc limit 2").rows]
    search = f"?owner={quote_plus(owners[1])}"
    maya = User("maya", "x", scope=(("owner", (owners[0],)),))
    tom = User("tom", "x")
    _click_save(app, monkeypatch, "/leads", search, "Their leads", user=tom)
    listed_maya, _m = _click_save(app, monkeypatch, "/leads", search, "Their leads too", user=maya)
    listed_tom, _m = _click_save(app, monkeypatch, "/leads", search, "Their leads", user=tom)  # overwrites his own only
    assert [name for name, _href in _links(listed_maya)] == ["Their leads too"]
    assert [name for name, _href in _links(listed_tom)] == ["Their leads"]
    with app.server.test_request_context():
        g.funnelboard_user = tom
        theirs, _count = listed(leads_page.TABLE, search)
        g.funnelboard_user = maya  # the same saved address opened by maya: her scope still holds
        hers, _count = listed(leads_page.TABLE, search)
    assert theirs and hers == []


def test_a_damaged_views_file_is_named_in_the_header_and_left_as_it_was(app, fresh_views, monkeypatch):
    fresh_views.write_text("{oops")
    listed, message = _click_save(app, monkeypatch, "/funnel", "", "mine")
    assert message == "The saved views file 'wh.duckdb.views.json' is not a views file funnelboard wrote; fix or remove it."
    assert _links(listed) == [] and fresh_views.read_text() == "{oops"
