-- One row per spell with its durations in calendar and business days and the lead's attributes.
with spells as (
    select
        lead_id, spell_no, stage, stage_order, is_funnel, is_terminal, entered_at, exited_at,
        next_stage, next_stage_order, next_kind, stage_left, reason, reason_at
    from int_spells
),

leads as (
    select l.lead_id, l.close_pushes, l.days_slipped, l.__attr__, cast(l.__stage_sla_by__ as varchar) as sla_value
    from fct_leads as l
),

settings as (
    select timezone, open_hour, close_hour, close_hour - open_hour as day_hours
    from cfg_settings
),

localised as (
    -- local wall time; in UTC it is the stored time, with no time-zone lookup per row
    select
        s.*,
        st.timezone,
        st.open_hour,
        st.day_hours,
        case when st.timezone = 'UTC' then s.entered_at else timezone(st.timezone, timezone('UTC', s.entered_at)) end as entered_local,
        case when st.timezone = 'UTC' then s.exited_at else timezone(st.timezone, timezone('UTC', s.exited_at)) end as exited_local
    from spells as s
    cross join settings as st
),

clocked as (
    -- days since Monday 1970-01-05, local time: the business-day clock below; and the whole days and
    -- the hour of the day at entry (from whole microseconds) for the business-hour clock
    select
        s.*,
        (epoch_us(s.entered_local) - epoch_us(timestamp '1970-01-05')) / 86400000000.0 as entered_d,
        (epoch_us(s.exited_local) - epoch_us(timestamp '1970-01-05')) / 86400000000.0 as exited_d,
        floor((epoch_us(date_trunc('day', s.entered_local)) - epoch_us(timestamp '1970-01-05')) / 86400000000.0) as entered_day,
        (epoch_us(s.entered_local) - epoch_us(date_trunc('day', s.entered_local))) / 3600000000.0 as entered_hour
    from localised as s
),

hour_clocked as (
    -- the business-hour clock at entry: whole weekdays of (close - open) hours, then the day's part of
    -- [open, close) on a weekday ([response] business_hours; warehouse/metrics/base.py business_clock)
    select
        s.*,
        (floor(s.entered_day / 7) * 5 + least(s.entered_day - 7 * floor(s.entered_day / 7), 5)) * s.day_hours
            + case
                when s.entered_day - 7 * floor(s.entered_day / 7) < 5 then least(greatest(s.entered_hour - s.open_hour, 0), s.day_hours)
                else 0
            end as entered_bh
    from clocked as s
),

-- the spell's SLA (cfg_sla: [sla], [sla_days]): its lead's [sla] by value's for the stage, else the stage's
with_sla as (
    select
        s.*,
        l.close_pushes,
        l.days_slipped,
        l.__attr__,
        v.stage is not null as sla_by_value,
        case when v.stage is not null then v.clock else g.clock end as sla_clock,
        case when v.stage is not null then v.sla_days else g.sla_days end as sla_days,
        case when v.stage is not null then v.sla_hours else g.sla_hours end as sla_hours
    from hour_clocked as s
    inner join leads as l on l.lead_id = s.lead_id
    left join cfg_sla as g on g.stage = s.stage and g.sla_value is null
    left join cfg_sla as v on v.stage = s.stage and v.sla_value = l.sla_value
),

-- where an SLA on the business clock runs out: its clock value as a week and the hours into it ...
-- (computed on the spell's own row: a second reader of with_sla would make DuckDB store all of it)
due_week as (
    select
        s.*,
        case when s.sla_clock = 'business' then floor((s.entered_bh + s.sla_hours) / (5 * s.day_hours)) end as due_week,
        case
            when s.sla_clock = 'business'
                then s.entered_bh + s.sla_hours - 5 * s.day_hours * floor((s.entered_bh + s.sla_hours) / (5 * s.day_hours))
        end as due_in_week
    from with_sla as s
),

-- ... back to a wall-clock time, the weekday it falls on and the hours after opening (a deadline
-- exactly at closing is the next opening: the age first exceeds the SLA then), then to UTC
due as (
    select
        d.*,
        epoch_us(timestamp '1970-01-05')
            + (d.due_week * 7 + floor(d.due_in_week / d.day_hours)) * 86400000000
            + (d.open_hour + d.due_in_week - d.day_hours * floor(d.due_in_week / d.day_hours)) * 3600000000 as due_local_us
    from due_week as d
)

select
    s.lead_id,
    s.spell_no,
    s.stage,
    s.stage_order,
    s.is_funnel,
    s.is_terminal,
    s.entered_at,
    s.exited_at,
    s.next_stage,
    s.next_stage_order,
    s.next_kind,
    s.stage_left,
    s.reason,
    s.reason_at,
    (epoch_us(s.exited_at) - epoch_us(s.entered_at)) / 86400000000.0 as duration_days,
    5 * floor(s.entered_d / 7) + least(s.entered_d - 7 * floor(s.entered_d / 7), 5) as entered_bd,
    5 * floor(s.exited_d / 7) + least(s.exited_d - 7 * floor(s.exited_d / 7), 5) as exited_bd,
    s.entered_bh,
    -- the SLA the spell is held against, and when it runs out (epoch microseconds, UTC; a float on the calendar clock)
    case when s.sla_hours is null then null when s.sla_by_value then 'sla segment' else 'sla' end as sla_source,
    s.sla_clock,
    s.sla_days,
    s.sla_hours,
    case
        when s.sla_clock = 'business' then case
            when s.timezone = 'UTC' then round(s.due_local_us)
            else epoch_us(timezone('UTC', timezone(s.timezone, make_timestamp(cast(round(s.due_local_us) as bigint)))))
        end
        else epoch_us(s.entered_at) + s.sla_days * 86400000000
    end as sla_due_us,
    cast(date_trunc('week', s.entered_local) as date) as entered_week,
    s.close_pushes,
    s.days_slipped,
    s.__attr__
from due as s
