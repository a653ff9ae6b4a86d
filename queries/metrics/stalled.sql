-- Open spells at as_of in a funnel stage before the last whose age exceeds the stage's threshold (SLA, else p90).
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
    group by stage, segment
),

open_spells as (
    select
        lead_id,
        stage,
        segment,
        entered_at,
        (epoch_us(cast($as_of as timestamp)) - epoch_us(entered_at)) / 86400000000.0 as age_days,
        (epoch_us(cast($as_of as timestamp)) - 7 * 86400000000 - epoch_us(entered_at)) / 86400000000.0 as age_week_ago_days
    from known
    where exited_at is null or exited_at > $as_of
),

thresholds as (
    select
        o.lead_id,
        o.stage,
        o.entered_at,
        o.age_days,
        o.age_week_ago_days,
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
    from open_spells as o
    cross join settings as se
    left join sla on sla.stage = o.stage
    left join stage_p90 as p on p.stage = o.stage
    left join segment_p90 as sp on sp.stage = o.stage and sp.segment = o.segment
),

stalled as (
    select
        lead_id,
        stage,
        entered_at,
        age_days,
        threshold_days,
        threshold_source,
        -- stalled a week ago: open then (it is open now) and older than the same threshold
        not (entered_at <= cast($as_of as timestamp) - interval 7 day and age_week_ago_days > threshold_days) as newly_stalled
    from thresholds
    where age_days > threshold_days
)

select
    s.lead_id,
    s.stage,
    s.entered_at,
    s.age_days,
    s.threshold_days,
    s.threshold_source,
    s.newly_stalled,
    l.amount_value,
    l.__attr__
from stalled as s
inner join leads as l on l.lead_id = s.lead_id
order by s.age_days desc, s.lead_id
