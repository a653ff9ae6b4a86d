"""The model runner: every rule it enforces fails loudly, naming the model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlglot

from funnelboard.core.errors import UserError
from funnelboard.warehouse.build import expansion
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.models import LAYERS, ModelError, build_order, expand, load_models, queries_root, render
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import HEADER, NOW, rows, write

GOOD_META = 'description = "d"\ngrain = "g"\n[columns]\nx = ""\n'


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "queries"
    for layer in LAYERS:
        (root / layer).mkdir(parents=True)
    return root


def model(root: Path, layer: str, name: str, sql: str, meta: str | None = GOOD_META) -> None:
    (root / layer / f"{name}.sql").write_text(sql)
    if meta is not None:
        (root / layer / f"{name}.toml").write_text(meta)


def test_the_shipped_models_load_and_order_by_dependency():
    models = load_models()
    order = [m.name for m in build_order(models)]
    assert set(order) >= {"stg_events", "int_spells", "int_lead_attributes", "fct_leads", "fct_spells"}
    assert order.index("stg_events") < order.index("int_spells") < order.index("fct_leads") < order.index("fct_spells")
    assert models["fct_spells"].deps == ("cfg_settings", "cfg_sla", "fct_leads", "int_spells")


@pytest.mark.parametrize(
    "layer,sql,meta,message",
    [
        ("staging", "select 1 as x", None, "model m has no metadata file m.toml"),
        ("staging", "select 1 as x; select 2 as x", GOOD_META, "must be exactly one SELECT statement, found 2"),
        ("staging", "insert into t values (1)", GOOD_META, "must be exactly one SELECT"),
        ("marts", "select * from raw_events", GOOD_META, "is a mart and selects *"),
        ("marts", "select e.* from raw_events as e", GOOD_META, "is a mart and selects *"),
        ("staging", "select x from raw_events where x = $a", GOOD_META, "uses undeclared parameter $a"),
        ("staging", "select x from raw_events", GOOD_META + "[parameters]\nb = ''\n", "declares parameter b but never uses it"),
        ("staging", "select x from nowhere", GOOD_META, "reads 'nowhere', which is neither a model nor a source table"),
        ("staging", "select x from raw_events where", GOOD_META, "does not parse"),
        ("staging", "select 1 as x", 'grain = "g"\n[columns]\nx = ""\n', "metadata lacks 'description'"),
    ],
)
def test_each_rule_names_the_model(tree, layer, sql, meta, message):
    model(tree, layer, "m", sql, meta)
    with pytest.raises(ModelError) as err:
        load_models(tree)
    assert message in str(err.value)


def test_cte_names_are_not_dependencies(tree):
    model(tree, "staging", "m", "with raw_leads_like as (select lead_id as x from raw_events) select x from raw_leads_like")
    assert load_models(tree)["m"].deps == ("raw_events",)


def test_a_dependency_cycle_is_refused(tree):
    model(tree, "intermediate", "a", "select x from b")
    model(tree, "intermediate", "b", "select x from a")
    with pytest.raises(ModelError, match="cycle"):
        load_models(tree)


def test_markers_expand_to_explicit_columns(config):
    rendered = render(load_models()["fct_leads"], expansion(config))
    for stage in config.stages:
        assert f'AS "reached_{stage}"' in rendered and f'AS "entered_{stage}"' in rendered
    for attribute in ("channel", "owner", "service_line"):
        assert f'"a"."{attribute}"' in rendered
    for marker in ("__attr__", "__stage__", "__stage_order__", "__score__", "__amount__"):
        assert marker not in rendered


def test_a_marker_inside_greatest_or_least_repeats_the_argument(config):
    tree = sqlglot.parse_one(
        "select greatest(l.created_week, l.week___stage__) as last_week, least(x___outcome__) as first_exit, "
        "coalesce(l.__attr__, 'none') as __attr__ from t as l where greatest(l.week___stage__) > 0",
        read="duckdb",
    )
    sql = expand(tree, expansion(config)).sql("duckdb")
    weeks = ", ".join(f'l."week_{s}"' for s in config.stages)
    assert f"GREATEST(l.created_week, {weeks}) AS last_week" in sql
    assert "LEAST(" + ", ".join(f'"x_{o}"' for o in config.outcomes) + ") AS first_exit" in sql
    assert 'COALESCE("l"."channel", \'none\') AS "channel"' in sql  # coalesce: the projection repeats
    assert f"WHERE GREATEST({weeks}) > 0" in sql


def test_models_render_for_other_dialects(config):
    spark = render(load_models()["fct_leads"], expansion(config), "spark")
    assert "`reached_mql`" in spark


@pytest.fixture
def small_warehouse(tmp_path, config) -> Path:
    db = tmp_path / "wh.duckdb"
    text = "\n".join([
        HEADER,
        "L1,New Lead,2024-01-01,,referral,Ann",
        "L1,Marketing Qualified,2024-01-02,,referral,Ann",
        "L1,Sales Qualified,2024-01-05,,referral,Bob",
        "L2,New Lead,2024-01-01,,outbound,Ann",
        "L2,Marketing Qualified,2024-01-03,,outbound,Ann",
    ]) + "\n"
    load_files(db, [write(tmp_path / "e.csv", text)], config, now=NOW)
    return db


@pytest.mark.slow
@pytest.mark.parametrize("hostile", ["x' OR 1=1 --", '"; DROP TABLE raw_events; --', "referral' --", "%", "referral\\"])
def test_hostile_filter_values_are_values(small_warehouse, hostile):
    gateway = Gateway(small_warehouse)
    row = run_metric(gateway, "conversion", MetricRequest(filters=(("channel", hostile),)))[0]
    assert row["cohort"] == 0
    assert run_metric(gateway, "conversion", MetricRequest(filters=(("channel", "referral"),)))[0]["cohort"] == 1
    gateway.close()
    assert rows(small_warehouse, "select count(*) from raw_events") == [(5,)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "req,message",
    [
        (MetricRequest(filters=(('channel" = channel or "1', "x"),)), "unknown segment column"),
        (MetricRequest(segment="lead_id"), "unknown segment column 'lead_id'"),
        (MetricRequest(from_stage="nurture"), "unknown stage 'nurture'"),
        (MetricRequest(to_stage="sql; drop table x"), "unknown stage"),
    ],
)
def test_column_and_stage_names_come_from_the_allow_list(small_warehouse, req, message):
    with pytest.raises(UserError, match=message):
        run_metric(Gateway(small_warehouse), "time_in_stage" if req.segment else "conversion", req)


def test_a_failing_data_test_stops_the_build_and_names_it(tmp_path, config, monkeypatch):
    root = tmp_path / "queries"
    shutil.copytree(queries_root(), root)
    meta = root / "marts" / "fct_leads.toml"
    meta.write_text(meta.read_text().replace("[tests]\n", "[tests]\nexpression = [\"current_stage = 'won'\"]\n"))
    import funnelboard.warehouse.models as models_module

    monkeypatch.setattr(models_module, "queries_root", lambda: root)
    db = tmp_path / "wh.duckdb"
    with pytest.raises(ModelError, match=r"model fct_leads fails its data test current_stage = 'won' on 1 row"):
        load_files(db, [write(tmp_path / "e.csv", HEADER + "\nL1,mql,2024-01-02,,x,y\n")], config, now=NOW)
    assert not db.exists(), "a failed build publishes nothing"


def test_a_warehouse_built_from_other_models_asks_for_a_rebuild(small_warehouse):
    import duckdb
    from click.testing import CliRunner

    from funnelboard.cli import main

    con = duckdb.connect(str(small_warehouse))
    con.execute("update meta set value = 'older' where key = 'models_fingerprint'")
    con.close()
    with pytest.raises(UserError, match=r"built by another version of funnelboard: rebuild them with `funnelboard build --db"):
        run_metric(Gateway(small_warehouse), "conversion", MetricRequest())
    assert CliRunner().invoke(main, ["build", "--db", str(small_warehouse)]).exit_code == 0
    assert run_metric(Gateway(small_warehouse), "conversion", MetricRequest())[0]["cohort"] == 2


def test_the_gateway_answers_a_repeated_query_from_its_cache_until_a_new_file_is_published(small_warehouse, tmp_path, config):
    gateway = Gateway(small_warehouse)
    first = run_metric(gateway, "conversion", MetricRequest())
    misses = gateway.misses
    again = run_metric(gateway, "conversion", MetricRequest())
    assert again == first and gateway.misses == misses and gateway.hits > 0
    other = run_metric(gateway, "conversion", MetricRequest(filters=(("channel", "referral"),)))  # other values, other key
    assert gateway.misses > misses and other[0]["cohort"] == 1
    text = "lead_id,stage,entered_at,reason,channel,owner\nL9,New Lead,2024-01-01,,referral,Bo\nL9,Marketing Qualified,2024-01-02,,referral,Bo\n"
    load_files(small_warehouse, [write(tmp_path / "more.csv", text)], config, now=NOW)  # publishes a new file
    after = run_metric(gateway, "conversion", MetricRequest())
    assert after[0]["cohort"] == first[0]["cohort"] + 1


def test_the_gateway_cache_stays_within_its_rows(small_warehouse):
    gateway = Gateway(small_warehouse, cache_rows=8)
    for n in range(1, 6):
        assert len(gateway.query("select * from range($n)", {"n": n}).rows) == n
    assert gateway._cached_rows <= 8
    assert len(gateway.query("select * from range($n)", {"n": 100}).rows) == 100  # too long to keep
    assert gateway._cached_rows <= 8
