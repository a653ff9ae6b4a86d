"""Reading numbers out: `query` a metric, print the models (`models`) or compile them for another engine (`sql`)."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from funnelboard.cli.common import DEFAULT_DB, config_option, db_option, make_settings
from funnelboard.cli.loading import build
from funnelboard.core.config import FunnelConfig
from funnelboard.core.days import parse_day, parse_moment
from funnelboard.core.errors import UserError
from funnelboard.core.export import plain, rows_to_csv
from funnelboard.core.periods import PRESETS, apply, as_of_day


def _period(config: FunnelConfig, start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """--from/--to dates (inclusive, local to the configured zone) as a UTC half-open period."""
    tz = ZoneInfo(config.timezone)

    def utc_midnight(text: str, flag: str, days: int = 0) -> datetime:
        day = parse_day(text, flag)
        local = datetime.combine(day + timedelta(days=days), time.min, tzinfo=tz)
        return local.astimezone(timezone.utc).replace(tzinfo=None)

    return (utc_midnight(start, "--from") if start else None, utc_midnight(end, "--to", 1) if end else None)


def _as_of(text: str | None, config: FunnelConfig) -> datetime | None:
    if not text:
        return None
    moment = parse_moment(text, "--as-of")
    if moment.tzinfo is None:
        if len(text) == 10:  # a date means the end of that day
            moment = moment + timedelta(days=1) - timedelta(microseconds=1)
        moment = moment.replace(tzinfo=ZoneInfo(config.timezone))
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _filters(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in values:
        if "=" not in item:
            raise UserError(f"--filter '{item}' is not COLUMN=VALUE.")
        col, value = item.split("=", 1)
        out.append((col.strip(), value))
    return tuple(out)


def _emit(rows: list[dict], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=plain))
        return
    columns = list(rows[0]) if rows else []
    if fmt == "csv":
        click.echo(rows_to_csv(rows), nl=False)
        return
    if not rows:
        click.echo("(no rows)")
        return
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in cells:
        click.echo("  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(r, widths)))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("-", "", 1).isdigit()


@click.command()
@click.argument("metric", required=False)
@click.option("--list", "list_metrics", is_flag=True, help="Name every metric with a one-line description.")
@click.option("--from", "start", help="Period start date (inclusive), YYYY-MM-DD.")
@click.option("--to", "end", help="Period end date (inclusive), YYYY-MM-DD.")
@click.option("--as-of", "as_of", help="Analysis time (default: the latest event).")
@click.option("--period", "period", type=click.Choice(list(PRESETS)), default=None,
              help="A named period relative to the as-of day (the latest event by default), as the dashboard's ?period=; --from/--to win.")
@click.option("--segment", help="Segment column to break down by.")
@click.option("--segment2", help="A second segment column, crossed with the first.")
@click.option("--filter", "filters", multiple=True, help="COLUMN=VALUE on lead attributes; repeatable.")
@click.option("--from-stage", help="Conversion start stage.")
@click.option("--to-stage", help="Conversion end stage.")
@click.option("--window", "window_days", type=click.IntRange(0, 36_500), help="Conversion window in days (0 = none; default from config).")
@click.option("--business-days", is_flag=True, help="Durations in business days.")
@click.option("--within-days", type=click.IntRange(min=1), default=30, show_default=True, help="time_to_convert: the N in 'reached the second stage within N days' (the key rate's stages, or --from-stage to --to-stage).")
@click.option("--by", help="disqualifiers: group by stage_left, week or a segment column.")
@click.option("--before", help="mix_vs_rate, time_in_stage_change, disqualifier_change: the earlier period as FROM:TO dates.")
@click.option("--after", help="mix_vs_rate: the later period as FROM:TO dates (default: the 28 days ending at as-of).")
@click.option("--which", type=click.Choice(["all", "converted", "not_converted"]), default="all", show_default=True, help="leads: which cohort members.")
@click.option("--cohorts", type=click.Choice(["mature", "all"]), default=None,
              help="mix_vs_rate: leave out cohort members younger than the maturity horizon (mature, the default) or not (all).")
@click.option("--lead-id", help="lead_history: the lead.")
@click.option("--change", help="change_leads: the kind of change (entered, advanced, went_back, exited, newly_stalled, recovered, new, won, lost, closed); "
                                 "pipeline_deals: the bar (start, created, pulled_in, increased, decreased, pushed_out, won, lost, exited, end).")
@click.option("--closing", help="pipeline_changes, pipeline_deals, pipeline_snapshot, forecast, forecast_moves, deal_value: only deals closing in this window: "
                                "all (the default), month, quarter or year (the calendar one of the period's last day) or FROM:TO dates.")
@click.option("--stage", help="change_leads: the stage the change is counted at ((none): exits with no funnel stage before them).")
@click.option("--outcome", help="change_leads --change exited: the outcome.")
@click.option("--reason", help="change_leads --change exited: the normalised reason.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@db_option
def query(metric, list_metrics, start, end, as_of, period, segment, segment2, filters, from_stage, to_stage, window_days, business_days, within_days, by, before, after, which, cohorts, lead_id, change, closing, stage, outcome, reason, fmt, db) -> None:
    """Print a metric from the warehouse, with the same filters the dashboard uses."""
    from funnelboard.warehouse.gateway import Gateway
    from funnelboard.warehouse.metrics import REGISTRY, MetricRequest, run_metric

    if list_metrics or not metric:
        for m in REGISTRY.values():
            click.echo(f"{m.name:22} {m.description}")
        return
    gateway = Gateway(Path(db))
    config = gateway.config()
    as_of_utc = _as_of(as_of, config)
    if period:
        start, end = _preset(period, start, end, as_of_utc or gateway.facts()["last_event"], config)
    period = _period(config, start, end)
    req = MetricRequest(
        start=period[0],
        end=period[1],
        as_of=as_of_utc,
        filters=_filters(filters),
        segment=segment,
        segment2=segment2,
        from_stage=from_stage,
        to_stage=to_stage,
        window_days=window_days,
        business_days=business_days,
        within_days=within_days,
        by=by,
        before=_span(config, before, "--before"),
        after=_span(config, after, "--after"),
        which=which,
        mature_only=None if cohorts is None else cohorts == "mature",
        lead_id=lead_id,
        change=change,
        closing=closing,
        stage=stage,
        outcome=outcome,
        reason=reason,
    )
    if gateway.facts()["first_event"] is None:  # its weeks would be of 1970: said, not shown as data
        click.echo("note: the warehouse holds no events yet (every row loaded so far is in the quarantine: "
                   "funnelboard status lists why); nothing below is counted.", err=True)
    _emit(run_metric(gateway, metric, req), fmt)


def _preset(name: str, start: str | None, end: str | None, as_of_utc: datetime | None, config: FunnelConfig) -> tuple[str | None, str | None]:
    """--period resolved as the dashboard resolves ?period= (core/periods.py), --from/--to winning."""
    first, last = apply(name, parse_day(start, "--from") if start else None, parse_day(end, "--to") if end else None,
                        as_of_day(as_of_utc, config.timezone))
    return (first.isoformat() if first else None), (last.isoformat() if last else None)


def _span(config: FunnelConfig, text: str | None, flag: str) -> tuple[datetime, datetime] | None:
    if not text:
        return None
    if ":" not in text:
        raise UserError(f"{flag} '{text}' is not FROM:TO, e.g. 2026-10-01:2026-10-28.")
    first, last = text.split(":", 1)
    start, end = _period(config, first, last)
    return start, end


@click.command("sql")
@click.option("--dialect", required=True, help="spark, trino, bigquery, snowflake, postgres or duckdb.")
@click.option("--model", "model_name", help="Only this model or metric query (default: every model in build order, then the metric queries).")
@config_option
def sql_command(dialect: str, model_name: str | None, config: str | None) -> None:
    """Print the SQL models and metric queries compiled for another engine (sqlglot plus our corrections)."""
    from funnelboard.warehouse.dialects import compile_all

    settings = make_settings(DEFAULT_DB, config)
    for item in compile_all(settings.config, dialect, model_name):
        click.echo(f"-- {item.name}")
        for warning in item.warnings:
            click.echo(f"-- warning: {warning}")
        if item.sql:
            click.echo(item.sql + ";")
        click.echo("")


@click.group()
def models() -> None:
    """The SQL models: list, render, build."""


@models.command("list")
def models_list() -> None:
    """Every model in build order with its layer and description."""
    from funnelboard.warehouse.models import build_order, load_models

    for m in build_order(load_models()):
        click.echo(f"{m.layer + '/' + m.name:36} {m.description}")


@models.command("render")
@click.argument("name")
@config_option
@click.option("--dialect", default="duckdb", show_default=True, help="Any sqlglot dialect (spark, trino, postgres, ...).")
def models_render(name: str, config: str | None, dialect: str) -> None:
    """Print one model (or metric query) as compiled SQL, configured lists expanded."""
    from funnelboard.warehouse.build import expansion
    from funnelboard.warehouse.models import (
        LAYERS,
        load_models,
        parse_model,
        queries_root,
        render,
    )

    settings = make_settings(DEFAULT_DB, config)
    found = load_models()
    if name in found:
        model = found[name]
    elif (queries_root() / "metrics" / f"{name}.sql").is_file():
        model = parse_model(queries_root() / "metrics" / f"{name}.sql", "metrics")
    else:
        raise UserError(f"no model named '{name}'; `funnelboard models list` names them ({', '.join(LAYERS)}).")
    click.echo(render(model, expansion(settings.config), dialect))


@models.command("build")
@config_option
@db_option
@click.pass_context
def models_build(ctx: click.Context, config: str | None, db: str) -> None:
    """Same as `funnelboard build`."""
    ctx.invoke(build, config=config, db=db)
