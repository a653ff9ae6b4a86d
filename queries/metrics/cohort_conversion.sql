-- Weekly cohorts of one stage pair S -> T: per local ISO week (Monday start), the leads whose
-- reached_at(S) falls in the week and how many of them reached T (within the window) by $as_of.
-- The weeks are $first_week to $last_week (local Mondays, worked out by the caller in the
-- configured zone); the local week of reached_at(S) is a column of fct_leads, computed at build.
with leads as (
    select l.__from__ as from_at, l.__from_week__ as week, l.__to__ as to_at
    from fct_leads as l
    where l.last_week >= $first_week
),

weeks as (
    select cast(unnest(generate_series(cast($first_week as date), cast($last_week as date), interval 7 day)) as date) as week
),

members as (
    select
        week,
        to_at <= $as_of
            and ($window_days = 0 or epoch_us(to_at) - epoch_us(from_at) <= $window_days * 86400000000) as converted,
        $maturity_days > 0 and epoch_us(cast($as_of as timestamp)) - epoch_us(from_at) < $maturity_days * 86400000000 as immature
    from leads
    where from_at <= $as_of and week >= $first_week and week <= $last_week
),

counted as (
    select
        week,
        count(*) as cohort,
        count(*) filter (where converted) as converted,
        count(*) filter (where immature) as immature,
        count(*) filter (where converted and not immature) as mature_converted
    from members
    group by week
)

select
    w.week,
    $from_stage as from_stage,
    $to_stage as to_stage,
    coalesce(c.cohort, 0) as cohort,
    coalesce(c.converted, 0) as converted,
    coalesce(c.immature, 0) as immature,
    coalesce(c.cohort - c.immature, 0) as mature_cohort,
    coalesce(c.mature_converted, 0) as mature_converted,
    $window_days as window_days,
    $maturity_days as maturity_days
from weeks as w
left join counted as c on c.week = w.week
order by w.week
