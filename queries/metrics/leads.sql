-- The leads behind a conversion number: the from-stage cohort of the period, converted or not, and where each is at as_of.
with leads as (
    select l.lead_id, l.__from__ as from_at, l.__to__ as to_at, l.current_stage, l.current_since, l.amount_value, l.close_pushes, l.days_slipped, l.__attr__
    from fct_leads as l
    -- a lead that counts in the period has a week on or after the period's (fct_leads is stored by last_week)
    where l.last_week >= $start_week
),

spells as (
    select s.lead_id, s.spell_no, s.stage, s.entered_at
    from fct_spells as s
),

as_of as (
    select
        lead_id,
        case when from_at <= $as_of then from_at end as from_at,
        case when to_at <= $as_of then to_at end as to_at,
        current_stage,
        current_since,
        amount_value,
        close_pushes,
        days_slipped,
        __attr__
    from leads
),

cohort as (
    select
        lead_id,
        from_at,
        to_at,
        to_at is not null
            and ($window_days = 0 or epoch_us(to_at) - epoch_us(from_at) <= $window_days * 86400000000) as converted,
        $maturity_days > 0 and epoch_us(cast($as_of as timestamp)) - epoch_us(from_at) < $maturity_days * 86400000000 as immature,
        current_stage,
        current_since,
        amount_value,
        close_pushes,
        days_slipped,
        __attr__
    from as_of
    where from_at >= $start and from_at < $end
),

-- the rows asked for, in list order ($limit null: all); the stage each lead is in now is then
-- looked up for these leads only, not for the whole cohort
page as (
    select lead_id, from_at, to_at, converted, immature, current_stage, current_since, amount_value, close_pushes, days_slipped, __attr__
    from cohort
    where $which = 'all' or ($which = 'converted') = converted
    order by from_at desc, lead_id
    limit $limit offset $offset
),

-- at or after the latest event ($latest) every spell has begun: the lead's latest spell is fct_leads'
-- current_stage; before it, the latest spell entered by as_of is looked up
now_in as (
    select s.lead_id, arg_max(s.stage, s.spell_no) as stage_now, arg_max(s.entered_at, s.spell_no) as in_stage_since
    from spells as s
    where not $latest and s.entered_at <= $as_of and s.lead_id in (select p.lead_id from page as p)
    group by s.lead_id
)

select
    p.lead_id,
    p.from_at,
    p.to_at,
    p.converted,
    p.immature,
    case when $latest then p.current_stage else n.stage_now end as stage_now,
    case when $latest then p.current_since else n.in_stage_since end as in_stage_since,
    p.amount_value,
    p.close_pushes,
    p.days_slipped,
    p.__attr__
from page as p
left join now_in as n on n.lead_id = p.lead_id
order by p.from_at desc, p.lead_id
