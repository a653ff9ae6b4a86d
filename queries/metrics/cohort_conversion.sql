-- Weekly cohorts of one stage pair S -> T: per local ISO week (Monday start), the leads whose
-- reached_at(S) falls in the week and how many of them reached T (within the window) by $as_of.
with leads as (
    select l.__from__ as from_at, l.__to__ as to_at
    from fct_leads as l
),

settings as (
    select timezone
    from cfg_settings
),

-- $weeks null: from the period start's week; else the $weeks weeks ending with as_of's week
bounds as (
    select
        case
            when $weeks is null
                then cast(date_trunc('week', timezone(st.timezone, timezone('UTC', cast($start as timestamp)))) as date)
            else cast(date_trunc('week', timezone(st.timezone, timezone('UTC', cast($as_of as timestamp)))) as date)
                - 7 * ($weeks - 1)
        end as first_week,
        cast(date_trunc('week', timezone(st.timezone, timezone('UTC',
            least(cast($as_of as timestamp), cast($end as timestamp) - interval 1 microsecond)
        ))) as date) as last_week
    from settings as st
),

weeks as (
    select cast(unnest(generate_series(b.first_week, b.last_week, interval 7 day)) as date) as week
    from bounds as b
),

-- a coarse UTC range first (local offsets are under a day), so only these leads get a local week
near as (
    select l.from_at, l.to_at
    from leads as l
    cross join bounds as b
    where l.from_at <= $as_of
        and l.from_at >= cast(b.first_week as timestamp) - interval 1 day
        and l.from_at < cast(b.last_week as timestamp) + interval 8 day
),

members as (
    select
        cast(date_trunc('week', timezone(st.timezone, timezone('UTC', n.from_at))) as date) as week,
        n.to_at <= $as_of
            and ($window_days = 0 or epoch_us(n.to_at) - epoch_us(n.from_at) <= $window_days * 86400000000) as converted,
        $window_days > 0 and epoch_us(cast($as_of as timestamp)) - epoch_us(n.from_at) < $window_days * 86400000000 as immature
    from near as n
    cross join settings as st
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
    $window_days as window_days
from weeks as w
left join counted as c on c.week = w.week
order by w.week
