-- Spells stalled at as_of or at as_of - 7 days (thresholds as at as_of): the stalled list and its weekly diff.
with spells as (
    select s.lead_id, s.stage, s.entered_at, s.exited_at, s.duration_days, s.__segment__ as segment
    from fct_spells as s
),

leads as (
    select l.lead_id, l.amount_value, l.__attr__
    from fct_leads as l
),

stages as (
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

known as (
    select
        s.lead_id,
        s.stage,
        coalesce(cast(s.segment as varchar), '(none)') as segment,
        s.entered_at,
        s.exited_at,
        s.duration_days
    from spells as s
    inner join stages as st on st.stage = s.stage
    where s.entered_at <= $as_of
),

completed as (
    select stage, segment, duration_days
    from known
    where exited_at <= $as_of
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
        lead_id,
        stage,
        segment,
        entered_at,
        exited_at,
        exited_at is null or exited_at > $as_of as open_now,
        entered_at <= cast($as_of as timestamp) - interval 7 day
            and (exited_at is null or exited_at > cast($as_of as timestamp) - interval 7 day) as open_then,
        (epoch_us(cast($as_of as timestamp)) - epoch_us(entered_at)) / 86400000000.0 as age_days,
        (epoch_us(cast($as_of as timestamp)) - 7 * 86400000000 - epoch_us(entered_at)) / 86400000000.0 as age_week_ago_days
    from known
    where exited_at is null or exited_at > cast($as_of as timestamp) - interval 7 day
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
        coalesce(open_now and age_days > threshold_days, false) as stalled_now,
        coalesce(open_then and age_week_ago_days > threshold_days, false) as stalled_then,
        coalesce(exited_at <= $as_of, false) as closed
    from thresholds
)

select
    f.lead_id,
    f.stage,
    f.entered_at,
    f.age_days,
    f.threshold_days,
    f.threshold_source,
    f.stalled_now as stalled,
    f.stalled_now and not f.stalled_then as newly_stalled,
    f.stalled_then and f.closed as recovered,
    l.amount_value,
    l.__attr__
from flagged as f
inner join leads as l on l.lead_id = f.lead_id
where f.stalled_now or f.stalled_then
order by f.age_days desc, f.lead_id
