"""Annotations: `funnelboard notes` keeps dated notes beside the warehouse; the weekly trend draws the
ones of its weeks for the view's filters (a scoped note only on views of its leads) and the weekly
pack lists them; bad input is one sentence and a foreign file is never overwritten."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core import annotations
from funnelboard.core.errors import UserError


def cli(*args):
    return CliRunner().invoke(main, list(args))


def test_notes_are_added_imported_listed_and_removed(tmp_path):
    path = tmp_path / "wh.duckdb.notes.json"
    a = annotations.add(path, date(2026, 11, 10), "  launched the   healthcare campaign ")
    (b,) = annotations.add_many(path, [(date(2026, 11, 3), "CRM outage", (("channel", "inbound"),))], segments={"channel": "Channel"})
    assert (a.id, a.text, b.id) == (1, "launched the healthcare campaign", 2)
    assert [n.id for n in annotations.read(path)] == [2, 1]  # by day
    csv = tmp_path / "notes.csv"
    csv.write_text("date,text,column,value\n2026-10-01,price change,,\n2026-10-02,webinar,channel,events\n", "utf-8")
    added = annotations.add_many(path, annotations.from_csv(csv))
    assert [(n.id, n.filters) for n in added] == [(3, ()), (4, (("channel", "events"),))]
    shown = annotations.for_view(annotations.read(path), (("channel", "inbound"),), date(2026, 10, 1), date(2026, 11, 30))
    assert [n.text for n in shown] == ["price change", "CRM outage", "launched the healthcare campaign"]
    assert [n.text for n in annotations.for_view(annotations.read(path), (), date(2026, 11, 1))] == ["launched the healthcare campaign"]
    assert annotations.remove(path, 2) and not annotations.remove(path, 2)
    for bad, says in (("", "a note needs a text"), ("x" * 201, "at most 200 characters"), ("a\x07b", "control")):
        with pytest.raises(UserError, match=says):
            annotations.add(path, date(2026, 1, 1), bad)
    with pytest.raises(UserError, match="scope 'colour' is not a segment column"):
        annotations.add(path, date(2026, 1, 1), "x", (("colour", "red"),), segments={"channel": "Channel"})
    csv.write_text("day,note\n2026-10-01,x\n", "utf-8")
    with pytest.raises(UserError, match="needs the columns date and text"):
        annotations.from_csv(csv)
    csv.write_text("date,text\n2026-13-01,x\n", "utf-8")
    with pytest.raises(UserError, match="line 2: '2026-13-01' is not a date"):
        annotations.from_csv(csv)
    foreign = tmp_path / "other.notes.json"
    foreign.write_text('{"something": "else"}', "utf-8")
    with pytest.raises(UserError, match="is not a notes file funnelboard wrote"):
        annotations.add(foreign, date(2026, 1, 1), "x")
    assert foreign.read_text("utf-8") == '{"something": "else"}'


@pytest.mark.slow
def test_the_trend_and_the_pack_show_the_notes_of_their_weeks_and_filters(app, db):
    import funnelboard.dashboard.pages.weekly as weekly
    from funnelboard.dashboard.report import render
    from tests.dashboard.test_report import last_full_week

    path = annotations.notes_path(db)
    path.unlink(missing_ok=True)
    monday = last_full_week(db)
    everyone = annotations.add(path, monday - timedelta(weeks=3), "launched the healthcare campaign")
    inbound = annotations.add(path, monday - timedelta(weeks=1), "inbound form broken", (("channel", "inbound"),))
    old = annotations.add(path, monday - timedelta(weeks=40), "long ago")
    try:
        with app.server.test_request_context():
            _cards, plain, _notes = weekly.update(f"?to={monday + timedelta(days=6)}")
            _cards, scoped, _notes = weekly.update(f"?to={monday + timedelta(days=6)}&channel=inbound")

        def marks(fig):
            return [a.text for a in fig.layout.annotations if a.text and a.text.startswith("✎")]

        assert marks(plain) == ["✎ launched the healthcare…"]
        assert sorted(marks(scoped)) == ["✎ inbound form broken", "✎ launched the healthcare…"]
        assert {s.x0 for s in scoped.layout.shapes} == {everyone.day.isoformat(), inbound.day.isoformat()}
        assert old.day.isoformat() not in {s.x0 for s in plain.layout.shapes}  # outside the weeks drawn
        # the disqualifier trend draws them too (a chart of one plot)
        import funnelboard.dashboard.pages.disqualifiers as disqualifiers

        with app.server.test_request_context():
            trend = disqualifiers.update_trend(f"?from={monday - timedelta(weeks=5)}&to={monday + timedelta(days=6)}&channel=inbound")
            whole = disqualifiers.update_trend(f"?to={monday + timedelta(days=6)}")  # from the data's start: the old note too
        assert sorted(marks(trend)) == ["✎ inbound form broken", "✎ launched the healthcare…"] and len(trend.layout.shapes) == 2
        assert sorted(marks(whole)) == ["✎ launched the healthcare…", "✎ long ago"]
        pack = render(app, monday, (("channel", "inbound"),))
        assert f"<li>{everyone.label()}</li>" in pack.html and "inbound form broken (channel = inbound)" in pack.html
        assert "long ago" not in pack.html
    finally:
        path.unlink(missing_ok=True)


def test_the_notes_command_says_what_is_wrong_in_one_sentence(db):
    path = annotations.notes_path(db)
    path.unlink(missing_ok=True)
    try:
        out = cli("notes", "add", "2026-11-10", "launched the healthcare campaign", "--filter", "channel=inbound", "--db", str(db))
        assert out.exit_code == 0 and out.output.startswith("note 1: 10 Nov 2026: launched the healthcare campaign (channel = inbound)")
        listed = cli("notes", "list", "--db", str(db))
        assert listed.output.splitlines() == ["1\t10 Nov 2026: launched the healthcare campaign (channel = inbound)"]
        for args, says in ((("add", "10/11/2026", "x"), "is not a date like 2026-11-10"),
                           (("add", "2026-11-10", "x", "--filter", "colour=red"), "scope 'colour' is not a segment column"),
                           (("remove", "9"), "there is no note 9")):
            out = cli("notes", *args, "--db", str(db))
            assert out.exit_code == 2 and says in out.output and "Traceback" not in out.output, out.output
        assert json.loads(path.read_text("utf-8"))["version"] == 1
    finally:
        path.unlink(missing_ok=True)


def test_a_note_on_a_chart_reads_as_typed_not_as_html():
    import plotly.graph_objects as go

    from funnelboard.dashboard.figures import add_notes

    fig = go.Figure(go.Scatter(x=["2026-11-02", "2026-11-09"], y=[1, 2]))
    add_notes(fig, [annotations.Note(1, date(2026, 11, 3), '<a href="javascript:alert(1)">x</a>')])
    (mark,) = fig.layout.annotations
    assert mark.text.startswith("✎ &lt;a href=&quot;javascript") and "<a" not in mark.hovertext
