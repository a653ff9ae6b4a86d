"""The weekly review as one self-contained HTML file (`funnelboard report`, docs/report.md).

The pack is the dashboard's weekly review rendered once: the same callbacks build the same
components (cards, trend, stalled and SLA line, speed to lead, changes, movers, criteria health)
from the same metric functions, and this module writes those components out as static HTML. Nothing
is computed twice. plotly.js is embedded once and the stylesheets inline, so the file opens with no
network; links point at the dashboard (`base_url`) with the same filters.
"""

from __future__ import annotations

import html as markup
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import plotly.io as pio
from dash import dcc
from dash.development.base_component import Component
from plotly.offline import get_plotlyjs

from funnelboard.core.errors import UserError
from funnelboard.dashboard import state
from funnelboard.dashboard.app import ASSETS
from funnelboard.dashboard.notes import week_notes
from funnelboard.dashboard.summary import NO_DATA, week_summary
from funnelboard.warehouse.metrics.base import local_time, utc_midnight

STYLESHEETS = ("style.css", "weekly.css", "stalled.css")
VOID = frozenset({"br", "hr", "img", "input", "wbr"})
PRINT_CSS = """
@media print {
  body { background: #fff; }
  .pack-section { break-inside: avoid; page-break-inside: avoid; }
  .pack-break { break-before: page; page-break-before: always; }
  a { color: inherit; text-decoration: none; }
}
.pack { max-width: 1200px; margin: 0 auto; padding: 16px; }
.pack-section { margin: 16px 0; }
.pack-meta { color: #555; font-size: 13px; }
.pack .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px; }
.pack-scroll { overflow-x: auto; }
.pack-table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
.pack-table caption { text-align: left; font-weight: 600; padding: 4px 0 6px; }
.pack-table th, .pack-table td { padding: 4px 8px; border-bottom: 1px solid #e5e7eb; text-align: left; vertical-align: top; }
.pack-table th { background: #f3f4f6; font-weight: 600; }
.pack-table td:not(:first-child) { font-variant-numeric: tabular-nums; }
"""


@dataclass(frozen=True)
class Pack:
    """A written pack: its ISO week's Monday, the address it renders, and the HTML."""

    monday: date
    search: str
    html: str
    title: str = ""
    lines: tuple[str, ...] = ()  # the headline cards as text, for a chat message and an email's text part
    link: str = ""  # the same view in the dashboard
    summary: tuple[str, ...] = ()  # dashboard/summary.py's sentences


def parse_week(text: str) -> date:
    """An ISO week ("2026-W47") or a date in it ("2026-11-18"): its Monday; else a one-sentence error."""
    try:
        if "W" in text.upper():
            year, week = text.upper().split("-W")
            return date.fromisocalendar(int(year), int(week), 1)
        day = date.fromisoformat(text)
    except ValueError:
        raise UserError(f"week '{text}' is neither an ISO week like 2026-W47 nor a date like 2026-11-18.") from None
    return day - timedelta(days=day.weekday())


def week_search(monday: date, filters: tuple[tuple[str, str], ...] = ()) -> str:
    """The dashboard address of a review week: the week of its To (its Sunday), with the filters."""
    return "?" + urlencode([("to", (monday + timedelta(days=6)).isoformat()), *filters])


def _check_week(monday: date, first: datetime, last: datetime) -> None:
    """A week the data does not reach is one sentence naming where the data starts or ends."""
    if monday > last.date():
        raise UserError(f"week {_iso(monday)} is after the data, which ends on {last:%a %d %b %Y}.")
    if monday + timedelta(days=7) <= first.date():
        raise UserError(f"week {_iso(monday)} is before the data, which starts on {first:%a %d %b %Y}.")


def _page(title: str, meta: str, sections: list, base_url: str, dashboard: str) -> str:
    """The pack as one HTML document: its sections (a page break before the fourth), plotly.js inline."""
    body = "".join(
        f'<section class="pack-section{" pack-break" if i > 2 else ""}" aria-label="{markup.escape(name)}">{to_html(parts, base_url)}</section>'
        for i, (name, parts) in enumerate(sections)
    )
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{markup.escape(title)}</title><style>{_styles()}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
        f'<body><main class="pack"><h1 class="page-title">{markup.escape(title)}</h1>'
        f'<p class="pack-meta">{markup.escape(meta)} · <a href="{markup.escape(dashboard)}">open in the dashboard</a></p>'
        f"{body}</main></body></html>"
    )


def _view_sections(monday: date, filters: tuple[tuple[str, str], ...], by: str | None, mix, config, stage_rows, reason_rows) -> list:
    """The charts of the other views: the funnel, the key rate by segment and the disqualifiers over the
    week itself (its Monday to its Sunday), the mix, time in stage over the 4 weeks ending with it."""
    from funnelboard.dashboard.pages import disqualifiers, funnel, segments, time_in_stage

    period = "?" + urlencode([("from", monday.isoformat()), ("to", (monday + timedelta(days=6)).isoformat()), *filters])
    weeks4_search = "?" + urlencode([("from", (monday - timedelta(weeks=3)).isoformat()),
                                     ("to", (monday + timedelta(days=6)).isoformat()), *filters])
    by_segment = period + (f"&{urlencode([('segment', by)])}" if by else "")
    return [
        ("Funnel", [_figure(funnel.update(period))]),
        ("Key rate by segment", [_figure(segments.update(by_segment))]),
        *([("Mix and rate", _mix_section(mix, by, config, monday))] if mix else []),
        ("Time in stage", [_figure(time_in_stage.update(weeks4_search)), _stage_table(stage_rows)]),
        ("Disqualifiers", [_figure(disqualifiers.update(period)), _reason_table(reason_rows)]),
    ]


def render(app, monday: date | None, filters: tuple[tuple[str, str], ...] = (), base_url: str = "http://127.0.0.1:8050",
           by: str | None = None) -> Pack:
    """The pack of one week (None: the last complete week of the data) under `filters`, rendered by the
    dashboard's own callbacks inside a request context of `app`; the rates by segment and the mix split
    by column `by` (default: channel, else the first segment column). Bad filters, an unknown column,
    a week with no data and a week after the data are one-sentence UserErrors."""
    from dash import html

    from funnelboard.dashboard import figures
    from funnelboard.dashboard.pages import stalled, weekly
    from funnelboard.dashboard.runtime import gateway
    from funnelboard.warehouse.metrics import Context, run_metric
    from funnelboard.warehouse.metrics.weekly import last_complete_week

    with app.server.test_request_context():
        g = gateway()
        config = g.config()
        view = state.parse("?" + urlencode(list(filters)), config)
        if view.problems:
            raise UserError(state.problem_line(view.problems, refused=True).replace("Nothing exported", "No report written", 1))
        by = split_column(config, by)
        ctx = Context(g)
        monday = monday or last_complete_week(ctx)
        first, last = ctx.earliest_event(), ctx.latest_event()
        _check_week(monday, first, last)
        search = week_search(monday, filters)
        cards, trend, notes = weekly.update(search)
        request = state.parse(search, config).request(config)
        kpis = run_metric(g, "weekly_kpis", request)
        (shown_week,) = run_metric(g, "review_week", request)
        mix = run_metric(g, "week_mix", replace(request, segment=by)) if by else None
        # time in stage over the 4 weeks ending with the review week (against the 4 before, at the same age),
        # the exit reasons of the week (against the 4 weeks before)
        weeks4 = (_utc(monday - timedelta(weeks=3), config), _utc(monday + timedelta(weeks=1), config))
        stage_rows = run_metric(g, "time_in_stage_change", replace(request, start=weeks4[0], end=weeks4[1]))
        reason_rows = run_metric(g, "disqualifier_change", replace(request, start=weeks4[0] + timedelta(weeks=3), end=weeks4[1]))
        summary = week_summary(kpis, monday, config, partial=shown_week["partial"], days_in=shown_week["days_in"], mix=mix, by=by,
                               stages=stage_rows, reasons=reason_rows)
        if summary == [NO_DATA]:
            raise UserError(f"week {_iso(monday)} has no data for these filters: no lead came in or moved "
                            f"(the data runs from {first:%d %b %Y} to {last:%d %b %Y}).")
        headline = tuple(
            f"{c['label']}: {c['value_text']} ({c['delta_week_text']} vs last week" + (f"; {c['footnote']})" if c["footnote"] else ")")
            for c in figures.kpi_card_values(kpis, monday, names=figures.kpi_names(config))
        )
        sections = [
            ("Summary", [html.H2("This week in short", className="panel-title"),
                         html.Ul([html.Li(sentence) for sentence in summary], className="pack-summary")]),
            ("Cards", [notes, _cards(cards)]),
            ("Trend", [_figure(trend, include_js=False)]),
            ("Stalled and SLAs", [html.Div(weekly.update_stalled(search), className="notice"),
                                  html.Div(weekly.update_response(search), className="notice"),
                                  html.Div(stalled.update_board(search)[0], className="stalled-board-panel")]),
            ("Changes this week", [weekly.update_changes(search)]),
            ("Top movers", [weekly.update_movers(search)]),
            # its checks read the mature cohorts of the 8 weeks to as_of: as of the week's Sunday
            ("Criteria health", [weekly.update_criteria(search.replace("?to=", "?as_of=", 1))]),
        ]
        sections += _view_sections(monday, filters, by, mix, config, stage_rows, reason_rows)
        trend_weeks = sorted({r["week"] for r in kpis})
        notes = week_notes(g, view.filters, trend_weeks[0], trend_weeks[-1] + timedelta(days=6)) if trend_weeks else []
        if notes:  # the annotations of the weeks the trend draws, after the summary
            sections.insert(1, ("Notes", [html.H2("Notes on these weeks", className="panel-title"),
                                          html.Ul([html.Li(n.label()) for n in notes], className="pack-notes")]))
        quality = g.query("select count(*) from quarantine").rows[0][0]
    title = f"Weekly review · week of {monday:%a %d %b %Y}"
    filters_text = ", ".join(f"{k} = {v}" for k, v in filters) or "none"
    span = " to ".join(f"{local_time(t, ZoneInfo(config.timezone)):%a %d %b %Y}" for t in (first, last))
    meta = (f"{_iso(monday)} · the data runs from {span} · filters: {filters_text} · data quality: "
            f"{f'{quality:,} rows quarantined' if quality else 'data clean'} · written {datetime.now():%Y-%m-%d %H:%M}")
    dashboard = base_url.rstrip("/") + "/" + search
    page = _page(title, meta, sections, base_url, dashboard)
    filters_line = f"Filters: {filters_text}." if filters else "All leads."
    return Pack(monday, search, page, title, (filters_line, *summary, *headline), dashboard, tuple(summary))


def split_column(config, by: str | None) -> str | None:
    """The segment column the pack splits by: `by`, else channel, else the first; None without segments."""
    if by is None:
        return "channel" if "channel" in config.segments else next(iter(config.segments), None)
    if by not in config.segments:
        raise UserError(f"--by '{by}' is not a segment column of this funnel ({', '.join(config.segments) or 'none'}).")
    return by


def _mix_section(rows: list[dict], by: str, config, monday: date) -> list:
    """The week's key-rate change against last week split into the mix of `by` and the rates within
    its values (`week_mix`): the waterfall and each value's numbers."""

    from funnelboard.core.config import stage_label
    from funnelboard.dashboard import figures

    key = config.review_rate
    column = by.replace("_", " ")
    cohort = f"leads reaching {stage_label(key.from_stage)}"
    periods = (f"week of {monday - timedelta(weeks=1):%d %b}", f"week of {monday:%d %b}")
    title = f"{key.name}: this week against last week at the same point, by {column}: mix vs rate"
    figure = figures.mix_vs_rate_figure(rows, rate_name=key.name, cohort=cohort, periods=periods, title=title)
    body = [[r["segment"], f"{r['share_before']:.1%} → {r['share_after']:.1%}",
             f"{r['rate_before']:.1%} → {r['rate_after']:.1%} ({r['n_before']:,} → {r['n_after']:,})",
             _points(r["mix_effect"]), _points(r["rate_effect"])] for r in rows]
    caption = (f"Each {column}: its share of the {cohort} and its {key.name}, last week → this week, and its part of the "
               f"mix and rate effects (points)")
    return [_figure(figure), _table([column.capitalize(), "Share", f"{key.name} (leads)", "Mix", "Rate"], body, caption, "pack-mix")]


def _utc(day: date, config) -> datetime:
    return utc_midnight(day, ZoneInfo(config.timezone))


def _table(head: list[str], body: list[list], caption: str, class_name: str):
    from dash import html

    table = html.Table([html.Caption(caption), html.Thead(html.Tr([html.Th(h, scope="col") for h in head])),
                        html.Tbody([html.Tr([html.Td(c) for c in row]) for row in body])], className=f"pack-table {class_name}")
    return html.Div(table, className="pack-scroll")


def _stage_table(rows: list[dict]):
    """`time_in_stage_change`: each stage's median now and 4 weeks before, the test and the verdict."""
    from funnelboard.core.config import stage_label
    from funnelboard.dashboard.summary import chance

    def days(value):
        return "over half still in it" if value is None else f"{value:.1f}"

    body = [[stage_label(r["stage"]), f"{days(r['km_p50_before'])} → {days(r['km_p50_after'])}",
             f"{r['n_before']:,} → {r['n_after']:,}", f"{r['observed_after']:,} ({r['expected_after']:,.0f})", chance("q", r["q_value"]),
             {"slower": "slower", "faster": "faster"}.get(r["change"], "no change beyond chance")] for r in rows]
    return _table(["Stage", "Median days (4 wks before → last 4 wks)", "Spells", "Left, last 4 wks (expected at the earlier pace)", "Log-rank", "Verdict"], body,
                  "Stages that got slower: leads entering in the last 4 weeks against the 4 before, each seen at the same age",
                  "pack-stages")


def _reason_table(rows: list[dict], most: int = 8):
    """`disqualifier_change`: the reasons whose share moved most (changes beyond chance first)."""
    from funnelboard.dashboard.summary import chance

    body = [[r["reason"], r["outcome"], f"{r['share_before']:.1%} → {r['share_after']:.1%}",
             f"{r['exits_after']:,}", "too few to test" if r["p_value"] is None else chance("q", r["q_value"]),
             "not tested" if r["p_value"] is None else "changed" if r["significant"] else "within chance"]
            for r in rows[:most]]
    more = f" ({len(rows) - most} more reasons moved less)" if len(rows) > most else ""
    return _table(["Reason", "Outcome", "Share of exits (4 wks before → this wk)", "Exits this wk", "Test", "Verdict"], body,
                  f"What changed: each reason's share of exits this week against the 4 weeks before{more}", "pack-reasons")


def _points(share: float) -> str:
    """A rate's change in points with its sign, never "-0.0"."""
    points = round(share * 100, 1) or 0.0
    return f"{points:+.1f}"


def _iso(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _cards(cards) -> Component | list:
    from dash import html

    return html.Div(cards, className="cards") if isinstance(cards, list) else cards


def _styles() -> str:
    return "\n".join((ASSETS / name).read_text("utf-8") for name in STYLESHEETS) + PRINT_CSS


def _figure(figure, include_js: bool = False) -> "_Raw":
    fig = figure if isinstance(figure, go.Figure) else go.Figure(figure)
    return _Raw(pio.to_html(fig, include_plotlyjs=include_js, full_html=False, config={"displayModeBar": False, "responsive": True}))


class _Raw(str):
    """HTML already written (a chart's div and script)."""


def to_html(node, base_url: str = "") -> str:
    """Dash components as static HTML: html.* as their tags, dcc.Link as a link to the dashboard,
    dcc.Graph as the chart; text escaped."""
    if node is None or node is False:
        return ""
    if isinstance(node, _Raw):
        return str(node)
    if isinstance(node, (str, int, float)):
        return markup.escape(str(node))
    if isinstance(node, (list, tuple)):
        return "".join(to_html(n, base_url) for n in node)
    if isinstance(node, dcc.Link):
        href = getattr(node, "href", "") or ""
        href = base_url.rstrip("/") + href if href.startswith("/") else href
        return f'<a href="{markup.escape(href)}"{_attributes(node)}>{to_html(node.children, base_url)}</a>'
    if isinstance(node, dcc.Graph):
        return str(_figure(node.figure)) if getattr(node, "figure", None) else ""
    if isinstance(node, go.Figure):
        return str(_figure(node))
    if isinstance(node, Component) and node._namespace == "dash_html_components":
        tag = node._type.lower()
        inner = "" if tag in VOID else to_html(getattr(node, "children", None), base_url)
        return f"<{tag}{_attributes(node)}>" + ("" if tag in VOID else f"{inner}</{tag}>")
    if isinstance(node, Component):  # another library's component: its children, if any
        return to_html(getattr(node, "children", None), base_url)
    return markup.escape(str(node))


def _attributes(node: Component) -> str:
    out = []
    for prop, name in (("className", "class"), ("title", "title"), ("scope", "scope"), ("colSpan", "colspan"),
                       ("rowSpan", "rowspan"), ("href", "href"), ("role", "role")):
        value = getattr(node, prop, None)
        if value is not None and not (prop == "href" and isinstance(node, dcc.Link)):
            out.append(f' {name}="{markup.escape(str(value))}"')
    node_id = getattr(node, "id", None)
    if isinstance(node_id, str):
        out.append(f' id="{markup.escape(node_id)}"')
    style = getattr(node, "style", None)
    if isinstance(style, dict) and style:
        css = "; ".join(f"{_kebab(k)}: {v}" for k, v in style.items())
        out.append(f' style="{markup.escape(css)}"')
    return "".join(out)


def _kebab(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() else c for c in name)


def chromium_binary() -> str:
    """Chromium for --format pdf: $FUNNELBOARD_CHROMIUM, else `chromium` or `chromium-browser` on PATH."""
    import os
    import shutil

    found = os.environ.get("FUNNELBOARD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).is_file():
        raise UserError("--format pdf prints through Chromium, which is not installed here: install Debian's "
                        "`chromium` (apt install chromium) or set FUNNELBOARD_CHROMIUM to its path.")
    return found


def print_pdf(html_file: Path, pdf_file: Path, timeout: float = 120.0) -> None:
    """The pack printed to PDF by headless Chromium (its print stylesheet: a section per page break),
    from the file on disk, with no network."""
    import subprocess
    import tempfile

    binary = chromium_binary()
    with tempfile.TemporaryDirectory() as profile:
        command = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--no-pdf-header-footer",
                   "--virtual-time-budget=15000", f"--print-to-pdf={pdf_file}", html_file.resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"Chromium did not print the PDF within {timeout:.0f} s; the HTML file is kept.") from None
    if done.returncode != 0 or not pdf_file.is_file() or pdf_file.stat().st_size == 0:
        raise UserError(f"Chromium could not print the PDF (exit code {done.returncode}); the HTML file is kept.")
