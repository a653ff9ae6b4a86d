"""Notes from the weekly review: the form under the trend adds a note (scoped to the view's filters
when asked, always to a signed-in user's scope) and the trend redraws with it; a note is removed
from its list; a mistake is one sentence and leaves the file as it was; the cohort heatmap marks
the weeks with notes."""

from __future__ import annotations

from datetime import timedelta

import dash
import pytest

from funnelboard.core import annotations
from funnelboard.core.accounts import User
from funnelboard.dashboard import note_editor
from tests.dashboard.test_report import last_full_week


@pytest.fixture
def notes(db):
    """The shared demo warehouse's notes file, absent before and after the test."""
    path = annotations.notes_path(db)
    path.unlink(missing_ok=True)
    yield path
    path.unlink(missing_ok=True)


def _press(app, trigger, value, *, search="", day=None, text=None, only=(), user=None):
    """The change callback as Dash calls it when `trigger` (ADD or a remove button's id) fired with `value`."""
    import json

    from dash._callback_context import context_value
    from dash._utils import AttributeDict
    from flask import g

    prop = f"{json.dumps(trigger, separators=(',', ':')) if isinstance(trigger, dict) else trigger}.n_clicks"
    with app.server.test_request_context():
        if user is not None:
            g.funnelboard_user = user
        token = context_value.set(AttributeDict(triggered_inputs=[{"prop_id": prop, "value": value}]))
        try:
            return note_editor.change(value, [], search, day, text, list(only), 4)
        finally:
            context_value.reset(token)


def _show(app, search, user=None):
    from dash._callback_context import context_value
    from dash._utils import AttributeDict
    from flask import g

    with app.server.test_request_context():
        if user is not None:
            g.funnelboard_user = user
        token = context_value.set(AttributeDict(triggered_inputs=[{"prop_id": "url.search", "value": search}]))
        try:
            return note_editor.show(search, 0)
        finally:
            context_value.reset(token)


def _trend_marks(app, search, user=None) -> list[str]:
    from flask import g

    import funnelboard.dashboard.pages.weekly as weekly

    with app.server.test_request_context():
        if user is not None:
            g.funnelboard_user = user
        _cards, trend, _line = weekly.update(search, 5)
    return [a.text for a in trend.layout.annotations if a.text and a.text.startswith("✎")]


def _remove_buttons(listed) -> list[int]:
    found = []

    def walk(node):
        if isinstance(getattr(node, "id", None), dict) and node.id.get("type") == note_editor.REMOVE:
            found.append(node.id["note"])
        kids = getattr(node, "children", None)
        for child in kids if isinstance(kids, list) else [kids] if kids is not None and not isinstance(kids, str) else []:
            walk(child)

    walk(listed)
    return found


def test_a_note_added_from_the_form_is_in_the_file_the_list_and_the_redrawn_trend(app, db, notes):
    monday = last_full_week(db)
    search = f"?to={monday + timedelta(days=6)}"
    listed, options, scope_line, day, hidden = _show(app, search)
    assert (day, hidden, options, scope_line) == (monday.isoformat(), False, [], None)  # the review week's Monday; no filters, no choice
    assert "No notes between" in listed.children
    message, changed, text = _press(app, note_editor.ADD, 1, search=search, day=day, text="  launched the   healthcare campaign ")
    assert message == f"Added: {monday:%d %b %Y}: launched the healthcare campaign." and (changed, text) == (5, "")
    (note,) = annotations.read(notes)
    assert (note.day, note.text, note.filters) == (monday, "launched the healthcare campaign", ())
    assert _trend_marks(app, search) == ["✎ launched the healthcare…"]
    listed, *_rest = _show(app, search)
    assert _remove_buttons(listed) == [note.id]


def test_only_for_the_current_filters_scopes_the_note_to_them(app, db, notes):
    monday = last_full_week(db)
    search = f"?to={monday + timedelta(days=6)}&channel=inbound"
    _listed, options, *_rest = _show(app, search)
    assert options == [{"label": "only for the current filters (channel = inbound)", "value": note_editor.ONLY_VIEW}]
    _press(app, note_editor.ADD, 1, search=search, day=str(monday), text="inbound form broken", only=[note_editor.ONLY_VIEW])
    _press(app, note_editor.ADD, 2, search=search, day=str(monday - timedelta(weeks=2)), text="for everyone")  # box left unticked
    assert [(n.text, n.filters) for n in annotations.read(notes)] == [("for everyone", ()), ("inbound form broken", (("channel", "inbound"),))]
    assert sorted(_trend_marks(app, search)) == ["✎ for everyone", "✎ inbound form broken"]
    assert _trend_marks(app, f"?to={monday + timedelta(days=6)}&channel=referral") == ["✎ for everyone"]


def test_a_note_is_removed_from_its_list_and_a_list_just_drawn_removes_nothing(app, db, notes):
    monday = last_full_week(db)
    search = f"?to={monday + timedelta(days=6)}"
    kept = annotations.add(notes, monday, "kept")
    gone = annotations.add(notes, monday - timedelta(weeks=1), "gone")
    with pytest.raises(dash.exceptions.PreventUpdate):  # new buttons (n_clicks 0) fire the callback: nothing happens
        _press(app, {"type": note_editor.REMOVE, "note": gone.id}, 0, search=search)
    message, changed, _text = _press(app, {"type": note_editor.REMOVE, "note": gone.id}, 1, search=search)
    assert (message, changed) == (f"Removed note {gone.id}.", 5)
    assert [n.id for n in annotations.read(notes)] == [kept.id]
    assert _trend_marks(app, search) == ["✎ kept"]
    message, changed, _text = _press(app, {"type": note_editor.REMOVE, "note": gone.id}, 2, search=search)  # a second click
    assert message == f"There is no note {gone.id} that you may remove; it may be gone already." and changed is dash.no_update


@pytest.mark.parametrize("day, text, says", [
    ("2026-11-10", "", 'A note needs a text, e.g. "launched the healthcare campaign".'),
    ("2026-11-10", "x" * 201, "A note has at most 200 characters; this one has 201."),
    ("2026-11-10", "tab\there", "A note cannot hold control or invisible format characters."),
    ("2026-13-10", "x", "'2026-13-10' is not a date like 2026-11-10."),
    (None, "x", "Pick the note's day first."),
])
def test_a_mistake_is_one_sentence_and_the_file_is_unchanged(app, notes, day, text, says):
    annotations.add(notes, annotations.check_day("2026-11-02"), "before")
    before = notes.read_bytes()
    message, changed, cleared = _press(app, note_editor.ADD, 1, day=day, text=text)
    assert message == says and changed is dash.no_update and cleared is dash.no_update
    assert notes.read_bytes() == before


def test_too_many_notes_and_a_damaged_file_are_one_sentence(app, notes, monkeypatch):
    annotations.add(notes, annotations.check_day("2026-11-02"), "one")
    monkeypatch.setattr(annotations, "MAX_NOTES", 1)
    message, *_rest = _press(app, note_editor.ADD, 1, day="2026-11-10", text="two")
    assert message == "A warehouse keeps at most 1 notes; remove some first." and len(annotations.read(notes)) == 1
    notes.write_text("{oops", "utf-8")
    message, *_rest = _press(app, note_editor.ADD, 1, day="2026-11-10", text="x")
    assert message == "The notes file 'wh.duckdb.notes.json' is not a notes file funnelboard wrote; fix or remove it."
    listed, *_rest = _show(app, "")
    assert listed.children == message and notes.read_text("utf-8") == "{oops"


def test_a_folder_that_cannot_be_written_is_one_sentence(app, notes, monkeypatch):
    def refused(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(annotations.saved_views.tempfile, "mkstemp", refused)
    message, changed, _text = _press(app, note_editor.ADD, 1, day="2026-11-10", text="x")
    assert message == "The note could not be saved: the warehouse's folder cannot be written (PermissionError)."
    assert changed is dash.no_update and not notes.exists()


def test_without_a_notes_file_the_control_is_hidden(app, monkeypatch):
    class NoFile:  # a gateway over marts with no warehouse file beside them
        db = None

    monkeypatch.setattr(note_editor, "gateway", lambda: NoFile())
    assert _show(app, "")[-1] is True
    message, *_rest = _press(app, note_editor.ADD, 1, day="2026-11-10", text="x")
    assert message == "Notes cannot be kept here: this dashboard reads no warehouse file."


@pytest.mark.slow
def test_a_scoped_users_note_carries_their_scope_and_shows_on_no_other_users_view(app, db, notes):
    from funnelboard.warehouse.gateway import Gateway

    monday = last_full_week(db)
    search = f"?to={monday + timedelta(days=6)}"
    owners = [r[0] for r in Gateway(db).query("select owner from fct_leads where owner is not null group by 1 order by count(*) desc limit 3").rows]
    maya = User("maya", "x", scope=(("owner", (owners[0],)),))
    tom = User("tom", "x", scope=(("owner", (owners[1],)),))
    both = User("lead", "x", scope=(("owner", (owners[0], owners[2])),))
    _listed, _options, scope_line, *_rest = _show(app, search, user=maya)
    assert scope_line == f"Your notes are kept for owner = {owners[0]} (your account's scope)."
    message, *_rest = _press(app, note_editor.ADD, 1, search=search, day=str(monday), text="my pipeline review", user=maya)
    (note,) = annotations.read(notes)
    assert note.filters == (("owner", owners[0]),), message
    assert _trend_marks(app, search, user=maya) == ["✎ my pipeline review"]  # her view: her scope is its filter
    assert _trend_marks(app, search, user=tom) == []
    assert _trend_marks(app, f"{search}&owner={owners[0]}", user=tom) == []  # asking for her leads shows him none, nor her note
    assert _trend_marks(app, search) == [] and _trend_marks(app, f"{search}&owner={owners[0]}") == ["✎ my pipeline review"]
    listed, *_rest = _show(app, search, user=tom)
    assert _remove_buttons(listed) == []
    message, *_rest = _press(app, {"type": note_editor.REMOVE, "note": note.id}, 1, search=f"{search}&owner={owners[0]}", user=tom)
    assert message.startswith("There is no note") and annotations.read(notes) == [note]
    # a user who sees two owners adds a note for one of them at a time
    message, *_rest = _press(app, note_editor.ADD, 1, search=search, day=str(monday), text="x", user=both)
    assert message == f"Your account sees several owner values ({owners[0]}, {owners[2]}): filter the view to one to add a note for it."
    message, *_rest = _press(app, note_editor.ADD, 1, search=f"{search}&owner={owners[1]}", day=str(monday), text="x", user=both)
    assert message == f"Your account sees owner = {owners[0]} or {owners[2]} only; this view's owner filter is outside it."
    _press(app, note_editor.ADD, 1, search=f"{search}&owner={owners[2]}", day=str(monday), text="theirs", user=both)
    assert annotations.read(notes)[-1].filters == (("owner", owners[2]),)
    # an unscoped user removes any note
    message, *_rest = _press(app, {"type": note_editor.REMOVE, "note": note.id}, 1, search=search)
    assert message == f"Removed note {note.id}."


def test_the_cohort_heatmap_marks_the_weeks_with_notes(app, db, notes):
    import funnelboard.dashboard.pages.funnel as funnel

    monday = last_full_week(db)
    annotations.add(notes, monday - timedelta(weeks=2) + timedelta(days=2), '<b>CRM</b> outage')
    annotations.add(notes, monday - timedelta(weeks=2) + timedelta(days=4), "back up")
    annotations.add(notes, monday - timedelta(weeks=1), "referral only", (("channel", "referral"),))
    with app.server.test_request_context():
        fig = funnel.update_heatmap(f"?to={monday + timedelta(days=6)}")
    weeks = set(fig.data[0].x)
    marks = [a for a in fig.layout.annotations if a.text.startswith("✎")]
    assert [(a.x, a.text) for a in marks] == [((monday - timedelta(weeks=2)).isoformat(), "✎2")] and marks[0].x in weeks
    assert marks[0].hovertext.split("<br>") == [f"{monday - timedelta(weeks=2) + timedelta(days=2):%d %b %Y}: &lt;b&gt;CRM&lt;/b&gt; outage",
                                                f"{monday - timedelta(weeks=2) + timedelta(days=4):%d %b %Y}: back up"]
