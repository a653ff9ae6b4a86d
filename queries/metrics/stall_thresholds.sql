-- The p90 stall threshold of every funnel stage before the last (segment NULL) and, with a segment
-- column, of each value of it with enough completed spells: the p90 of the spells completed by
-- as_of (over the stage, or within the value). A spell with a stage SLA is held against that
-- instead (fct_spells carries it: docs/metrics.md, Stalled). Thresholds belong to the whole
-- warehouse: this query runs without the request's filters, once per published file, as_of and
-- segment column (the gateway keeps them), and `stalled` and `changes` bind them as lists.
with stages as (
    select stage
    from cfg_stages
    where kind = 'funnel' and not is_last
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
    select st.stage, cast(null as varchar) as segment, p.p90 as threshold_days, 'p90 stage' as threshold_source
    from stages as st
    left join stage_p90 as p on p.stage = st.stage
),

-- a value's own p90 where it has min_sample completed spells of the stage
by_segment as (
    select sp.stage, sp.segment, sp.p90 as threshold_days, 'p90 segment' as threshold_source
    from segment_p90 as sp
    cross join settings as se
    where sp.n_completed >= se.min_sample
)

select stage, segment, threshold_days, threshold_source
from by_stage
union all
select stage, segment, threshold_days, threshold_source
from by_segment
order by stage, segment nulls first
