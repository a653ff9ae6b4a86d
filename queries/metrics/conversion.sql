-- Cohort conversion from one funnel stage to another, as of $as_of, with the period view.
-- One pass over the leads: every count is a filtered count of the same rows.
with leads as (
    select l.__from__ as from_at, l.__to__ as to_at
    from fct_leads as l
    -- a lead that counts in the period has a week on or after the period's (fct_leads is stored by last_week)
    where l.last_week >= $start_week
),

as_of as (
    select
        case when from_at <= $as_of then from_at end as from_at,
        case when to_at <= $as_of then to_at end as to_at
    from leads
),

flagged as (
    select
        from_at,
        to_at,
        coalesce(from_at >= $start and from_at < $end, false) as in_cohort,
        coalesce(
            to_at is not null and ($window_days = 0 or epoch_us(to_at) - epoch_us(from_at) <= $window_days * 86400000000), false
        ) as converted,
        coalesce($maturity_days > 0 and epoch_us(cast($as_of as timestamp)) - epoch_us(from_at) < $maturity_days * 86400000000, false)
            as immature
    from as_of
)

select
    $from_stage as from_stage,
    $to_stage as to_stage,
    count(*) filter (where in_cohort) as cohort,
    count(*) filter (where in_cohort and converted) as converted,
    count(*) filter (where in_cohort and immature) as immature,
    count(*) filter (where in_cohort and not immature) as mature_cohort,
    count(*) filter (where in_cohort and converted and not immature) as mature_converted,
    count(*) filter (where from_at >= $start and from_at < $end) as period_from,
    count(*) filter (where to_at >= $start and to_at < $end) as period_to,
    $window_days as window_days,
    $maturity_days as maturity_days
from flagged
