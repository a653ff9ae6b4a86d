-- Cohort conversion from one funnel stage to another, as of $as_of, with the period view.
with leads as (
    select l.lead_id, l.__from__ as from_at, l.__to__ as to_at
    from fct_leads as l
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
        to_at is not null
            and ($window_days = 0 or epoch_us(to_at) - epoch_us(from_at) <= $window_days * 86400000000) as converted,
        $window_days > 0 and epoch_us(cast($as_of as timestamp)) - epoch_us(from_at) < $window_days * 86400000000 as immature
    from as_of
    where from_at >= $start and from_at < $end
),

period_view as (
    select
        count(*) filter (where from_at >= $start and from_at < $end) as period_from,
        count(*) filter (where to_at >= $start and to_at < $end) as period_to
    from as_of
)

select
    $from_stage as from_stage,
    $to_stage as to_stage,
    (select count(*) from cohort) as cohort,
    (select count(*) filter (where converted) from cohort) as converted,
    (select count(*) filter (where immature) from cohort) as immature,
    (select count(*) filter (where not immature) from cohort) as mature_cohort,
    (select count(*) filter (where converted and not immature) from cohort) as mature_converted,
    p.period_from,
    p.period_to,
    $window_days as window_days
from period_view as p
