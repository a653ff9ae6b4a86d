-- The funnel spells (but the last stage's) still open at the latest event, or closed in the 7 days
-- before it: every spell the stalled list can hold at that as_of (open now, or open a week ago),
-- about an eighth of fct_spells, so the stalled list and its counts read this instead.
with spells as (
    select
        s.lead_id, s.spell_no, s.stage, s.stage_order, s.entered_at, s.exited_at, s.entered_bh,
        s.sla_source, s.sla_clock, s.sla_days, s.sla_hours, s.sla_due_us, s.close_pushes, s.days_slipped, s.__attr__
    from fct_spells as s
),

stages as (
    select stage_order
    from cfg_stages
    where kind = 'funnel' and not is_last
),

-- from fct_spells itself: a second reader of the spells CTE would make DuckDB store all of it
latest as (
    select max(f.entered_at) as at
    from fct_spells as f
)

select
    s.lead_id,
    s.spell_no,
    s.stage,
    s.stage_order,
    s.entered_at,
    s.exited_at,
    s.entered_bh,
    s.sla_source,
    s.sla_clock,
    s.sla_days,
    s.sla_hours,
    s.sla_due_us,
    l.at as open_at,
    s.close_pushes,
    s.days_slipped,
    s.__attr__
from spells as s
inner join stages as st on st.stage_order = s.stage_order
cross join latest as l
where s.exited_at is null or s.exited_at > l.at - interval 7 day
