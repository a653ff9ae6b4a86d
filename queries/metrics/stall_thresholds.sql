-- The stall threshold of every funnel stage before the last (segment NULL) and, with a segment
-- column, of each value of it with enough completed spells: the stage's SLA if set, else the p90
-- of its spells completed by as_of (within the value, else over the stage). Thresholds belong to
-- the whole warehouse: this query runs without the request's filters, once per published file,
-- as_of and segment column (the gateway keeps them), and `stalled` holds open spells against them.
with stages as (
    select stage
    from cfg_stages
    where kind = 'funnel' and not is_last
),

sla as (
    select stage, sla_days
    from cfg_sla
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
        coalesce(sla.sla_days, p.p90) as threshold_days,
        case when sla.sla_days is not null then 'sla' else 'p90 stage' end as threshold_source
    from stages as st
    left join sla on sla.stage = st.stage
    left join stage_p90 as p on p.stage = st.stage
),

-- a value's own p90 only where the stage has no SLA and the value has min_sample completed spells
by_segment as (
    select sp.stage, sp.segment, sp.p90 as threshold_days, 'p90 segment' as threshold_source
    from segment_p90 as sp
    cross join settings as se
    left join sla on sla.stage = sp.stage
    where sla.sla_days is null and sp.n_completed >= se.min_sample
)

select stage, segment, threshold_days, threshold_source
from by_stage
union all
select stage, segment, threshold_days, threshold_source
from by_segment
order by stage, segment nulls first
