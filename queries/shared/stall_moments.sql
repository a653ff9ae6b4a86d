-- Every spell of a funnel stage before the last entered by $as_of and not left before $open_after
-- (the reader's earliest moment of interest), with its stall threshold and the moment it goes over
-- it (docs/metrics.md, Stalled). The threshold: the spell's stage SLA where it has one (fct_spells
-- carries it, from [sla] and [sla_days] at build: its lead's [sla] by value's, else the stage's),
-- else the p90 of its segment value where that has one, else the stage's p90; the p90s
-- (stall_thresholds.sql) come in as parallel lists. The moment: fct_spells' sla_due_us for an SLA,
-- entered_at + the p90's days otherwise.
-- Shared: the stalled list and the changes read it and filter the spells they need.
with sm_thresholds as (
    select
        unnest($threshold_stages) as stage,
        unnest($threshold_segments) as segment,
        unnest($threshold_days) as threshold_days,
        unnest($threshold_sources) as threshold_source
),

-- the funnel stages before the last, by number, with their p90 (the last resort)
sm_stages as (
    select st.stage, st.stage_order, t.threshold_days
    from cfg_stages as st
    left join sm_thresholds as t on t.stage = st.stage and t.threshold_source = 'p90 stage'
    where st.kind = 'funnel' and not st.is_last
),

-- the p90 of a segment value, by stage number
sm_segment_p90 as (
    select st.stage_order, t.segment, t.threshold_days
    from sm_thresholds as t
    inner join cfg_stages as st on st.stage = t.stage
    where t.threshold_source = 'p90 segment'
),

sm_spells as (
    select
        s.lead_id,
        st.stage,
        st.stage_order,
        coalesce(cast(s.__segment__ as varchar), '(none)') as segment,
        s.entered_at,
        s.exited_at,
        s.entered_bh,
        s.sla_source,
        s.sla_clock,
        s.sla_days,
        s.sla_hours,
        s.sla_due_us,
        st.threshold_days as stage_p90,
        try_cast(s.__amount__ as double) as amount_value,
        s.close_pushes,
        s.days_slipped,
        s.__attr__
    from fct_spells as s
    -- joined on the stage's number: reading the stage's name for 10M spells costs more
    inner join sm_stages as st on st.stage_order = s.stage_order
    where s.entered_at <= $as_of and (s.exited_at is null or s.exited_at >= $open_after)
),

sm_thresholded as (
    select
        c.*,
        case when c.sla_source is not null then c.sla_days when p.stage_order is not null then p.threshold_days else c.stage_p90 end
            as threshold_days,
        case
            when c.sla_source is not null then c.sla_source when p.stage_order is not null then 'p90 segment' else 'p90 stage'
        end as threshold_source,
        coalesce(c.sla_clock, 'calendar') as clock
    from sm_spells as c
    left join sm_segment_p90 as p on p.stage_order = c.stage_order and p.segment = c.segment
)

select
    lead_id,
    stage,
    segment,
    entered_at,
    exited_at,
    threshold_days,
    sla_hours,
    clock,
    threshold_source,
    entered_bh,
    case when sla_source is not null then sla_due_us else epoch_us(entered_at) + threshold_days * 86400000000 end as breached_us,
    amount_value,
    close_pushes,
    days_slipped,
    __attr__
from sm_thresholded
