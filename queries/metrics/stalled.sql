-- Spells stalled at as_of or at as_of - 7 days (thresholds as at as_of): the stalled list and its weekly diff.
-- The thresholds (stall_thresholds.sql, the same for any filter) come in as parallel lists; this
-- query reads only the spells open at as_of or a week before, with their lead's columns
-- (fct_spells carries them), for the list. No order: the caller sorts.
with stages as (
    select stage, stage_order
    from cfg_stages
    where kind = 'funnel' and not is_last
),

thresholds as (
    select
        unnest($threshold_stages) as stage,
        unnest($threshold_segments) as segment,
        unnest($threshold_days) as threshold_days,
        unnest($threshold_sources) as threshold_source
),

-- spells open at as_of or at as_of - 7 days
candidates as (
    select
        s.lead_id,
        st.stage,
        coalesce(cast(s.__segment__ as varchar), '(none)') as segment,
        s.entered_at,
        s.exited_at,
        s.exited_at is null or s.exited_at > $as_of as open_now,
        s.entered_at <= cast($as_of as timestamp) - interval 7 day
            and (s.exited_at is null or s.exited_at > cast($as_of as timestamp) - interval 7 day) as open_then,
        (epoch_us(cast($as_of as timestamp)) - epoch_us(s.entered_at)) / 86400000000.0 as age_days,
        (epoch_us(cast($as_of as timestamp)) - 7 * 86400000000 - epoch_us(s.entered_at)) / 86400000000.0 as age_week_ago_days,
        try_cast(s.__amount__ as double) as amount_value,
        s.__attr__
    from fct_spells as s
    -- joined on the stage's number: reading the stage's name for 10M spells costs more
    inner join stages as st on st.stage_order = s.stage_order
    where s.entered_at <= $as_of and (s.exited_at is null or s.exited_at > cast($as_of as timestamp) - interval 7 day)
),

-- a segment value's own threshold where it has one, else the stage's
matched as (
    select
        c.lead_id,
        c.stage,
        c.entered_at,
        c.open_now,
        c.open_then,
        c.exited_at,
        c.age_days,
        c.age_week_ago_days,
        c.amount_value,
        c.__attr__,
        coalesce(ts.threshold_days, tg.threshold_days) as threshold_days,
        coalesce(ts.threshold_source, tg.threshold_source) as threshold_source
    from candidates as c
    left join thresholds as tg on tg.stage = c.stage and tg.segment is null
    left join thresholds as ts on ts.stage = c.stage and ts.segment = c.segment
),

flagged as (
    select
        lead_id,
        stage,
        entered_at,
        age_days,
        threshold_days,
        threshold_source,
        amount_value,
        __attr__,
        coalesce(open_now and age_days > threshold_days, false) as stalled_now,
        coalesce(open_then and age_week_ago_days > threshold_days, false) as stalled_then,
        coalesce(exited_at <= $as_of, false) as closed
    from matched
)

select
    lead_id,
    stage,
    entered_at,
    age_days,
    threshold_days,
    threshold_source,
    stalled_now as stalled,
    stalled_now and not stalled_then as newly_stalled,
    stalled_then and closed as recovered,
    amount_value,
    __attr__
from flagged
where stalled_now or stalled_then
