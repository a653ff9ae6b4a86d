-- The leads behind a conversion number: the from-stage cohort of the period, converted or not, and where each is at as_of.
with leads as (
    select l.lead_id, l.__from__ as from_at, l.__to__ as to_at, l.amount_value, l.__attr__
    from fct_leads as l
),

spells as (
    select s.lead_id, s.spell_no, s.stage, s.entered_at
    from fct_spells as s
),

now_in as (
    select lead_id, arg_max(stage, spell_no) as stage_now, arg_max(entered_at, spell_no) as in_stage_since
    from spells
    where entered_at <= $as_of
    group by lead_id
),

as_of as (
    select
        lead_id,
        case when from_at <= $as_of then from_at end as from_at,
        case when to_at <= $as_of then to_at end as to_at
    from leads
),

cohort as (
    select
        lead_id,
        from_at,
        to_at,
        to_at is not null
            and ($window_days = 0 or epoch_us(to_at) - epoch_us(from_at) <= $window_days * 86400000000) as converted,
        $window_days > 0 and epoch_us(cast($as_of as timestamp)) - epoch_us(from_at) < $window_days * 86400000000 as immature
    from as_of
    where from_at >= $start and from_at < $end
)

select
    c.lead_id,
    c.from_at,
    c.to_at,
    c.converted,
    c.immature,
    n.stage_now,
    n.in_stage_since,
    l.amount_value,
    l.__attr__
from cohort as c
inner join leads as l on l.lead_id = c.lead_id
left join now_in as n on n.lead_id = c.lead_id
where $which = 'all' or ($which = 'converted') = c.converted
order by c.from_at desc, c.lead_id
