-- Per lead and funnel stage (but the last), over all its spells by $as_of: how many, the latest one's duration, the cumulative time.
with spells as (
    select s.lead_id, s.spell_no, s.stage, s.stage_order, s.entered_at, s.exited_at, s.duration_days, s.entered_bd, s.exited_bd
    from fct_spells as s
),

stages as (
    select stage, stage_order
    from cfg_stages
    where kind = 'funnel' and not is_last
),

durations as (
    select
        s.lead_id,
        s.spell_no,
        s.stage,
        s.stage_order,
        not coalesce(s.exited_at <= $as_of, false) as is_open,
        case
            when s.exited_at <= $as_of then
                case when $business_days then s.exited_bd - s.entered_bd else s.duration_days end
            when $business_days then $as_of_bd - s.entered_bd
            else (epoch_us(cast($as_of as timestamp)) - epoch_us(s.entered_at)) / 86400000000.0
        end as days
    from spells as s
    inner join stages as st on st.stage = s.stage
    where s.entered_at <= $as_of
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
