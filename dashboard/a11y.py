"""What keyboard and screen-reader users get on every page: charts with a text alternative, and the
shell's two toggles (the page menu and the filter bar, folded away on a phone).

A chart is a <figure> named by its title, with a caption that opens the figure's numbers as a
table. The table is built in the browser from the figure the page's callback already sent
(assets/a11y.js, `funnelboard.chartData`), so no page writes it and no request is added: create_app
gives every graph some callback draws a clientside callback of its own.
"""

from __future__ import annotations

from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html

CHART = "fb-chart"  # the <figure> around a graph; {"type": CHART, "graph": graph id}
CHART_SUMMARY = "fb-chart-summary"  # the caption's <summary>: "Data: <title>"
CHART_DATA = "fb-chart-data"  # the figure's numbers: Markdown tables (one string, however many cells)
GRAPH_CONFIG = {"displaylogo": False}


def chart(graph_id: str) -> html.Figure:
    """A graph as every page shows it: in a <figure> whose caption opens its numbers as a table."""
    return html.Figure(
        [
            dcc.Loading(dcc.Graph(id=graph_id, config=GRAPH_CONFIG)),
            html.Figcaption(
                html.Details(
                    [
                        html.Summary("Data", id={"type": CHART_SUMMARY, "graph": graph_id}),
                        dcc.Markdown(id={"type": CHART_DATA, "graph": graph_id}, className="chart-data"),
                    ]
                ),
                className="chart-caption",
            ),
        ],
        id={"type": CHART, "graph": graph_id},
        className="chart",
    )


def figure_outputs(app: Dash) -> list[str]:
    """The ids of the components a callback of `app` draws a `figure` into: the graphs."""
    ids = set()
    for callback in app._callback_list:
        for part in callback["output"].strip(".").split("..."):
            component, _, prop = part.rpartition(".")
            if prop.split("@")[0] == "figure" and not component.startswith("{"):
                ids.add(component)
    return sorted(ids)


def register_chart_alternatives(app: Dash) -> None:
    """Give each graph's <figure> its name and its data table from the figure drawn into it."""
    for graph_id in figure_outputs(app):
        app.clientside_callback(
            ClientsideFunction("funnelboard", "chartData"),
            Output({"type": CHART, "graph": graph_id}, "aria-label"),
            Output({"type": CHART_SUMMARY, "graph": graph_id}, "children"),
            Output({"type": CHART_DATA, "graph": graph_id}, "children"),
            Input(graph_id, "figure"),
        )


def register_toggles(app: Dash, toggles: list[tuple[str, str]], url: str) -> None:
    """Each (button, panel): a click opens or closes the panel (class `open`, the button's aria-expanded);
    moving to another page closes it. In the browser only (assets/a11y.js, `funnelboard.toggle`)."""
    for button, panel in toggles:
        app.clientside_callback(
            ClientsideFunction("funnelboard", "toggle"),
            Output(panel, "className"),
            Output(button, "aria-expanded"),
            Input(button, "n_clicks"),
            Input(url, "pathname"),
            State(panel, "className"),
            prevent_initial_call=True,
        )
