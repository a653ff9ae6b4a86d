-- Spells stalled at as_of or at as_of - 7 days (thresholds as at as_of): the stalled list and its weekly diff.
-- The spells, thresholds and stall moments come from the shared step stall_moments (the thresholds
-- the same for any filter); this query keeps the spells open at as_of or a week before, with their
-- lead's columns, for the list. No order: the caller sorts. An SLA on the business clock holds the
-- business hours since entry (the business-hour clock at as_of, $as_of_bh, minus the clock at
-- entered_at) against its hours; the others hold calendar days against days.
-- the spells open at as_of or at as_of - 7 days, with their threshold and stall moment
with candidates as (
    select
        m.lead_id,
        m.stage,
        m.entered_at,
        m.exited_at,
        m.threshold_days,
        m.sla_hours,
        m.clock,
        m.threshold_source,
        m.entered_bh,
        m.breached_us,
        m.exited_at is null or m.exited_at > $as_of as open_now,
        m.entered_at <= cast($as_of as timestamp) - interval 7 day
            and (m.exited_at is null or m.exited_at > cast($as_of as timestamp) - interval 7 day) as open_then,
        (epoch_us(cast($as_of as timestamp)) - epoch_us(m.entered_at)) / 86400000000.0 as age_days,
        (epoch_us(cast($as_of as timestamp)) - 7 * 86400000000 - epoch_us(m.entered_at)) / 86400000000.0 as age_week_ago_days,
        m.amount_value,
        m.close_pushes,
        m.days_slipped,
        m.__attr__
    from stall_moments as m
    where m.exited_at is null or m.exited_at > cast($as_of as timestamp) - interval 7 day
),

flagged as (
    select
        lead_id,
        stage,
        entered_at,
        age_days,
        threshold_days,
        threshold_source,
        sla_hours,
        clock,
        breached_us,
        amount_value,
        close_pushes,
        days_slipped,
        __attr__,
        coalesce(open_now and case when clock = 'business' then $as_of_bh - entered_bh > sla_hours else age_days > threshold_days end, false)
            as stalled_now,
        coalesce(open_then and case when clock = 'business' then $week_ago_bh - entered_bh > sla_hours else age_week_ago_days > threshold_days end, false)
            as stalled_then,
        coalesce(exited_at <= $as_of, false) as closed
    from candidates
)

select
    lead_id,
    stage,
    entered_at,
    age_days,
    threshold_days,
    threshold_source,
    sla_hours,
    clock,
    make_timestamp(cast(floor(breached_us) as bigint)) as breached_at,
    stalled_now as stalled,
    stalled_now and not stalled_then as newly_stalled,
    stalled_then and closed as recovered,
    amount_value,
    close_pushes,
    days_slipped,
    __attr__
from flagged
where stalled_now or stalled_then
