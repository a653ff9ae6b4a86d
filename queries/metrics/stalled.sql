-- Spells stalled at as_of or at as_of - 7 days (thresholds as at as_of): the stalled list and its weekly diff.
-- Two reads of fct_spells, each with only what it needs: the completed spells (stage, segment,
-- duration) for the thresholds, and the few spells open at as_of or a week before, with their
-- lead's columns (fct_spells carries them), for the list. No order: the caller sorts.
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

-- spells open at as_of or at as_of - 7 days
candidates as (
    select
        s.lead_id,
        s.stage,
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
    inner join stages as st on st.stage = s.stage
    where s.entered_at <= $as_of and (s.exited_at is null or s.exited_at > cast($as_of as timestamp) - interval 7 day)
),

thresholds as (
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
        case
            when sla.sla_days is not null then sla.sla_days
            when $segmented and sp.n_completed >= se.min_sample then sp.p90
            else p.p90
        end as threshold_days,
        case
            when sla.sla_days is not null then 'sla'
            when $segmented and sp.n_completed >= se.min_sample then 'p90 segment'
            else 'p90 stage'
        end as threshold_source
    from candidates as c
    cross join settings as se
    left join sla on sla.stage = c.stage
    left join stage_p90 as p on p.stage = c.stage
    left join segment_p90 as sp on sp.stage = c.stage and sp.segment = c.segment
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
    from thresholds
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
