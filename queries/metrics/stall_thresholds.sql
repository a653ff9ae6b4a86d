-- The stall threshold of every funnel stage before the last (segment NULL) and, with a segment
-- column, of each value of it with enough completed spells: the stage's SLA if set, else the p90
-- of its spells completed by as_of (within the value, else over the stage); and every SLA of a
-- value of the [sla] by column (sla_value), which comes before both. Thresholds belong to
-- the whole warehouse: this query runs without the request's filters, once per published file,
-- as_of and segment column (the gateway keeps them), and `stalled` holds open spells against them.
with stages as (
    select stage
    from cfg_stages
    where kind = 'funnel' and not is_last
),

-- the stage's own SLA (a value's SLA is in by_value)
sla as (
    select stage, clock, sla_days, sla_hours
    from cfg_sla
    where sla_value is null
),

settings as (
    select min_sample
    from cfg_settings
),

completed as (
    select s.stage, coalesce(cast(s.__segment__ as varchar), '(none)') as segment, s.duration_days
    from fct_spells as s
    inner join stages as st on st.stage = s.stage
    where s.entered_at <= $as_of and s.exited_at <= $as_of
),

stage_p90 as (
    select stage, quantile_cont(duration_days, 0.9) as p90
    from completed
    group by stage
),

segment_p90 as (
    select stage, segment, count(*) as n_completed, quantile_cont(duration_days, 0.9) as p90
    from completed
    where $segmented
    group by stage, segment
),

by_stage as (
    select
        st.stage,
        cast(null as varchar) as segment,
        cast(null as varchar) as sla_value,
        case when sla.stage is not null then sla.sla_days else p.p90 end as threshold_days,
        sla.sla_hours,
        coalesce(sla.clock, 'calendar') as clock,
        case when sla.stage is not null then 'sla' else 'p90 stage' end as threshold_source
    from stages as st
    left join sla on sla.stage = st.stage
    left join stage_p90 as p on p.stage = st.stage
),

-- a value's own p90 only where the stage has no SLA and the value has min_sample completed spells
by_segment as (
    select
        sp.stage,
        sp.segment,
        cast(null as varchar) as sla_value,
        sp.p90 as threshold_days,
        cast(null as double) as sla_hours,
        'calendar' as clock,
        'p90 segment' as threshold_source
    from segment_p90 as sp
    cross join settings as se
    left join sla on sla.stage = sp.stage
    where sla.stage is null and sp.n_completed >= se.min_sample
),

-- a value of the [sla] by column with its own SLA for the stage
by_value as (
    select
        c.stage,
        cast(null as varchar) as segment,
        c.sla_value,
        c.sla_days as threshold_days,
        c.sla_hours,
        c.clock,
        'sla segment' as threshold_source
    from cfg_sla as c
    inner join stages as st on st.stage = c.stage
    where c.sla_value is not null
)

select stage, segment, sla_value, threshold_days, sla_hours, clock, threshold_source
from by_stage
union all
select stage, segment, sla_value, threshold_days, sla_hours, clock, threshold_source
from by_segment
union all
select stage, segment, sla_value, threshold_days, sla_hours, clock, threshold_source
from by_value
order by stage, segment nulls first, sla_value nulls first
