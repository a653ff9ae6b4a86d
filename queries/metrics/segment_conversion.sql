-- Cohort conversion S -> T per value of one segment column (or two crossed); the statistics are added in Python.
with leads as (
    select l.lead_id, l.__from__ as from_at, l.__to__ as to_at, l.__segment__ as segment, l.__segment2__ as segment2
    from fct_leads as l
    -- a lead that counts in the period has a week on or after the period's (fct_leads is stored by last_week)
    where l.last_week >= $start_week
),

as_of as (
    select
        lead_id,
        coalesce(cast(segment as varchar), '(none)') as segment,
        coalesce(cast(segment2 as varchar), '(none)') as segment2,
        case when from_at <= $as_of then from_at end as from_at,
        case when to_at <= $as_of then to_at end as to_at
    from leads
),

cohort as (
    select
        segment,
        segment2,
        to_at is not null
            and ($window_days = 0 or epoch_us(to_at) - epoch_us(from_at) <= $window_days * 86400000000) as converted,
        $maturity_days > 0 and epoch_us(cast($as_of as timestamp)) - epoch_us(from_at) < $maturity_days * 86400000000 as immature
    from as_of
    where from_at >= $start and from_at < $end
),

grouped as (
    select
        segment,
        segment2,
        count(*) as n,
        count(*) filter (where converted) as converted,
        count(*) filter (where immature) as immature,
        count(*) filter (where converted and not immature) as mature_converted
    from cohort
    group by segment, segment2
)

select
    segment,
    segment2,
    n,
    converted,
    converted / n as rate,
    immature,
    mature_converted
from grouped
order by segment, segment2
