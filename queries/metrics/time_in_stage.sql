-- Time in each funnel stage (but the last): completed-only quantiles and Kaplan-Meier quantiles.
with stages as (
    select stage, stage_order
    from cfg_stages
    where kind = 'funnel' and not is_last
),

-- keyed by stage_order, not the stage's name: grouping and window partitions on an integer are
-- several times faster than on text at 10M spells; the name is joined back at the end
durations as (
    select stage_order, segment, completed, us / 86400000000.0 as days
    from spell_durations
    where entered_at >= $start and entered_at < $end
),

summary as (
    select
        stage_order,
        segment,
        count(*) filter (where completed) as n_completed,
        count(*) filter (where not completed) as n_open,
        quantile_cont(days, 0.5) filter (where completed) as p50,
        quantile_cont(days, 0.75) filter (where completed) as p75,
        quantile_cont(days, 0.9) filter (where completed) as p90
    from durations
    group by stage_order, segment
),

-- Kaplan-Meier: at each distinct completed duration, d completions among n still at risk.
at_each_time as (
    select stage_order, segment, days, count(*) filter (where completed) as d, count(*) as leaving
    from durations
    group by stage_order, segment, days
),

at_risk as (
    select
        stage_order, segment, days, d,
        sum(leaving) over (partition by stage_order, segment order by days desc rows between unbounded preceding and current row) as n
    from at_each_time
),

survival as (
    select
        stage_order, segment, days,
        product(1 - d / n) over (partition by stage_order, segment order by days rows between unbounded preceding and current row) as s
    from at_risk
    where d > 0
),

km as (
    select
        stage_order,
        segment,
        min(days) filter (where s <= 0.5 + 1e-12) as km_p50,
        min(days) filter (where s <= 0.25 + 1e-12) as km_p75,
        min(days) filter (where s <= 0.1 + 1e-12) as km_p90
    from survival
    group by stage_order, segment
)

select
    st.stage,
    m.segment,
    m.n_completed,
    m.n_open,
    m.p50,
    m.p75,
    m.p90,
    k.km_p50,
    k.km_p75,
    k.km_p90
from summary as m
inner join stages as st on st.stage_order = m.stage_order
left join km as k on k.stage_order = m.stage_order and k.segment = m.segment
order by m.stage_order, m.segment
