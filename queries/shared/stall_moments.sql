-- Every spell of a funnel stage before the last entered by $as_of and not left before $open_after
-- (the reader's earliest moment of interest), with its stall threshold and the
-- moment it goes over it (docs/metrics.md, Stalled): the threshold of the lead's value of the [sla]
-- by column where it has one, else of its segment value (a p90) where it has one, else the stage's;
-- the thresholds (stall_thresholds.sql) come in as parallel lists. The moment is entered_at + the
-- threshold's days, or for an SLA on the business clock the instant the business hours since entry
-- (fct_spells' entered_bh: Monday to Friday inside the opening hours of cfg_settings, local) pass its hours.
-- Shared: the stalled list and the changes read it and filter the spells they need.
with sm_settings as (
    select timezone, open_hour, close_hour, close_hour - open_hour as day_hours
    from cfg_settings
),

sm_thresholds as (
    select
        unnest($threshold_stages) as stage,
        unnest($threshold_segments) as segment,
        unnest($threshold_values) as sla_value,
        unnest($threshold_days) as threshold_days,
        unnest($threshold_hours) as sla_hours,
        unnest($threshold_clocks) as clock,
        unnest($threshold_sources) as threshold_source
),

-- the funnel stages before the last, by number, with their own threshold (the last resort)
sm_stages as (
    select
        st.stage,
        st.stage_order,
        t.threshold_days,
        t.sla_hours,
        t.clock,
        t.threshold_source
    from cfg_stages as st
    left join sm_thresholds as t on t.stage = st.stage and t.segment is null and t.sla_value is null
    where st.kind = 'funnel' and not st.is_last
),

-- the thresholds of a segment value (p90) or an [sla] by value, by stage number
sm_specific as (
    select st.stage_order, t.segment, t.sla_value, t.threshold_days, t.sla_hours, t.clock, t.threshold_source
    from sm_thresholds as t
    inner join cfg_stages as st on st.stage = t.stage
    where t.segment is not null or t.sla_value is not null
),

sm_spells as (
    select
        s.lead_id,
        st.stage,
        st.stage_order,
        coalesce(cast(s.__segment__ as varchar), '(none)') as segment,
        cast(s.__sla_by__ as varchar) as sla_value,
        s.entered_at,
        s.exited_at,
        s.entered_bh,
        st.threshold_days as stage_days,
        st.sla_hours as stage_hours,
        st.clock as stage_clock,
        st.threshold_source as stage_source,
        try_cast(s.__amount__ as double) as amount_value,
        s.__attr__
    from fct_spells as s
    -- joined on the stage's number: reading the stage's name for 10M spells costs more
    inner join sm_stages as st on st.stage_order = s.stage_order
    where s.entered_at <= $as_of and (s.exited_at is null or s.exited_at >= $open_after)
),

-- the SLA of the lead's [sla] by value where it has one, else its segment value's p90 where it
-- has one, else the stage's threshold; and the business-hour clock value at which an SLA on that
-- clock runs out (fct_spells' entered_bh + its hours)
sm_thresholded as (
    select
        c.*,
        case when tv.stage_order is not null then tv.threshold_days when ts.stage_order is not null then ts.threshold_days else c.stage_days end
            as threshold_days,
        case when tv.stage_order is not null then tv.sla_hours when ts.stage_order is not null then ts.sla_hours else c.stage_hours end
            as sla_hours,
        case when tv.stage_order is not null then tv.clock when ts.stage_order is not null then ts.clock else c.stage_clock end as clock,
        case when tv.stage_order is not null then tv.threshold_source when ts.stage_order is not null then ts.threshold_source else c.stage_source end
            as threshold_source
    from sm_spells as c
    left join sm_specific as ts on ts.stage_order = c.stage_order and ts.segment = c.segment
    left join sm_specific as tv on tv.stage_order = c.stage_order and tv.sla_value = c.sla_value
),

-- the clock value at which the SLA runs out, as a week and the hours into it ...
sm_due_bh as (
    select
        e.*,
        se.timezone,
        se.open_hour,
        se.day_hours,
        case when e.clock = 'business' then e.entered_bh + e.sla_hours end as due_bh
    from sm_thresholded as e
    cross join sm_settings as se
),

sm_due_week as (
    select
        e.*,
        floor(e.due_bh / (5 * e.day_hours)) as due_week,
        e.due_bh - 5 * e.day_hours * floor(e.due_bh / (5 * e.day_hours)) as due_in_week
    from sm_due_bh as e
),

-- ... and back to a wall-clock time: the weekday it falls on and the hours after opening (a
-- deadline exactly at closing is the next opening: the age first exceeds the SLA then)
sm_due as (
    select
        d.*,
        epoch_us(timestamp '1970-01-05')
            + (d.due_week * 7 + floor(d.due_in_week / d.day_hours)) * 86400000000
            + (d.open_hour + d.due_in_week - d.day_hours * floor(d.due_in_week / d.day_hours)) * 3600000000 as due_local_us
    from sm_due_week as d
),

-- when the spell goes over its threshold, epoch microseconds (UTC): entered_at + the threshold's
-- days, or the business-hour deadline
sm_matched as (
    select
        d.*,
        case
            when d.clock = 'business' and d.timezone = 'UTC' then round(d.due_local_us)
            when d.clock = 'business'
                then epoch_us(timezone('UTC', timezone(d.timezone, make_timestamp(cast(round(d.due_local_us) as bigint)))))
            else epoch_us(d.entered_at) + d.threshold_days * 86400000000
        end as breached_us
    from sm_due as d
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
    breached_us,
    amount_value,
    __attr__
from sm_matched
