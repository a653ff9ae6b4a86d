-- One row per spell with its durations in calendar and business days and the lead's attributes.
with spells as (
    select
        lead_id, spell_no, stage, stage_order, is_funnel, is_terminal, entered_at, exited_at,
        next_stage, next_stage_order, next_kind, stage_left, reason, reason_at
    from int_spells
),

leads as (
    select l.lead_id, l.__attr__
    from fct_leads as l
),

settings as (
    select timezone, open_hour, close_hour
    from cfg_settings
),

localised as (
    -- local wall time; in UTC it is the stored time, with no time-zone lookup per row
    select
        s.*,
        st.open_hour,
        st.close_hour,
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
    -- the business-hour clock at entry: whole weekdays of (close - open) hours, then the day's part of
    -- [open, close) on a weekday ([response] business_hours; warehouse/metrics/base.py business_clock)
    (floor(s.entered_day / 7) * 5 + least(s.entered_day - 7 * floor(s.entered_day / 7), 5)) * (s.close_hour - s.open_hour)
        + case
            when s.entered_day - 7 * floor(s.entered_day / 7) < 5
                then least(greatest(s.entered_hour - s.open_hour, 0), s.close_hour - s.open_hour)
            else 0
        end as entered_bh,
    cast(date_trunc('week', s.entered_local) as date) as entered_week,
    l.__attr__
from clocked as s
inner join leads as l on l.lead_id = s.lead_id
