-- Per lead and funnel stage (but the last), over all its spells by $as_of: how many, the latest one's duration, the cumulative time.
with durations as (
    select lead_id, spell_no, stage, stage_order, not completed as is_open, us / 86400000000.0 as days
    from spell_durations
),

per_lead as (
    select
        lead_id,
        stage,
        stage_order,
        count(*) as spells,
        arg_max(days, spell_no) as latest_days,
        sum(days) as cumulative_days,
        arg_max(is_open, spell_no) as latest_open
    from durations
    group by lead_id, stage, stage_order
)

select
    lead_id,
    stage,
    spells,
    latest_days,
    cumulative_days,
    latest_open
from per_lead
order by lead_id, stage_order
