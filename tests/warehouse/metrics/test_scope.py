"""A user's scope is a filter the user cannot lift: every metric's answer under scope {owner: [A]} is
its answer under the filter owner=A, and a scope of two owners counts what the two filters count."""

from __future__ import annotations

import pytest

from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.metrics.registry import METRICS


@pytest.fixture(scope="module")
def owners(demo) -> list[str]:
    return [o for (o,) in demo.query("select owner from fct_leads group by 1 order by count(*) desc, 1").rows]


@pytest.mark.slow
@pytest.mark.parametrize("name", [m.name for m in METRICS])
def test_a_scope_of_one_value_answers_as_the_filter_on_it(demo, owners, name):
    a = owners[0]
    extra = {}
    if name == "lead_history":
        extra["lead_id"] = demo.query("select min(lead_id) from fct_leads where owner = $o", {"o": a}).rows[0][0]
    filtered = run_metric(demo, name, MetricRequest(filters=(("owner", a),), **extra))
    scoped = run_metric(demo, name, MetricRequest(scope=(("owner", (a,)),), **extra))
    assert scoped == filtered
    if name in ("leads", "stalled", "funnel", "conversion"):
        assert scoped != run_metric(demo, name, MetricRequest(**extra)), "the scope narrows the answer"


def test_a_scope_of_two_owners_counts_what_their_filters_count(demo, owners):
    a, b = owners[:2]
    both = run_metric(demo, "conversion", MetricRequest(scope=(("owner", (a, b)),)))[0]
    each = [run_metric(demo, "conversion", MetricRequest(filters=(("owner", o),)))[0] for o in (a, b)]
    assert both["cohort"] == sum(r["cohort"] for r in each) > 0
    assert both["converted"] == sum(r["converted"] for r in each)
    leads = run_metric(demo, "leads", MetricRequest(scope=(("owner", (a, b)),)))
    assert {r["owner"] for r in leads} == {a, b}
    # a filter outside the scope finds nothing rather than lifting it
    c = owners[2]
    assert run_metric(demo, "leads", MetricRequest(filters=(("owner", c),), scope=(("owner", (a,)),))) == []


def test_a_lead_outside_the_scope_does_not_exist(demo, owners):
    from funnelboard.core.errors import UserError

    theirs = demo.query("select min(lead_id) from fct_leads where owner = $o", {"o": owners[1]}).rows[0][0]
    with pytest.raises(UserError, match=f"there is no lead '{theirs}'"):
        run_metric(demo, "lead_history", MetricRequest(lead_id=theirs, scope=(("owner", (owners[0],)),)))
    assert run_metric(demo, "lead_history", MetricRequest(lead_id=theirs))
