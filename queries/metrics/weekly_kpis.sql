-- Weekly KPIs per local ISO week (Monday start), one row per week from $first_week to $last_week, none missing.
-- The weeks are $first_week to $last_week (local Mondays, worked out by the caller in the configured
-- zone); the local weeks of each lead's instants are columns of fct_leads, computed at build.
-- Each week is seen as of its own moment: $as_of, or with $same_point = 1 as of $as_of moved back by
-- the week's distance from $last_week (the same point of an earlier week: week to date, same cohort age).
with leads as (
    select
        l.created_at,
        l.created_week,
        l.reached___stage__,
        l.week___stage__,
        l.__first__ as first_at,
        l.__from__ as from_at,
        l.__from_week__ as from_week,
        l.__to__ as to_at,
        l.__to_week__ as to_week
    from fct_leads as l
    -- a lead whose latest week is before the first week shown counts in none of them
    where l.last_week >= $first_week
),

spells as (
    select s.is_funnel, s.entered_at, s.entered_week
    from fct_spells as s
),

-- the moment (epoch microseconds) each week is seen at
as_of_us as (
    select epoch_us(cast($as_of as timestamp)) as us
),

-- what had happened by each week's moment: later instants (and their weeks) are not known yet
lead_weeks as (
    select
        case
            when epoch_us(l.created_at) <= a.us - $same_point * date_diff('day', l.created_week, cast($last_week as date)) * 86400000000
            then l.created_week
        end as created_week,
        case
            when epoch_us(l.reached___stage__) <= a.us - $same_point * date_diff('day', l.week___stage__, cast($last_week as date)) * 86400000000
            then l.week___stage__
        end as week___stage__,
        case
            when epoch_us(l.from_at) <= a.us - $same_point * date_diff('day', l.from_week, cast($last_week as date)) * 86400000000
            then l.from_week
        end as from_week,
        -- the from cohort's outcome, seen at the moment of the from week
        a.us - $same_point * date_diff('day', l.from_week, cast($last_week as date)) * 86400000000 as cohort_us,
        l.from_at,
        l.to_at,
        case
            when epoch_us(l.to_at) <= a.us - $same_point * date_diff('day', l.to_week, cast($last_week as date)) * 86400000000
                and epoch_us(l.first_at) <= a.us - $same_point * date_diff('day', l.to_week, cast($last_week as date)) * 86400000000
            then l.to_week
        end as to_week,
        (epoch_us(l.to_at) - epoch_us(l.first_at)) / 86400000000.0 as days_to_target
    from leads as l
    cross join as_of_us as a
),

cohorts as (
    select
        created_week,
        week___stage__,
        from_week,
        to_week,
        days_to_target,
        from_week is not null and epoch_us(to_at) <= cohort_us
            and ($window_days = 0 or epoch_us(to_at) - epoch_us(from_at) <= $window_days * 86400000000) as converted,
        from_week is not null and $maturity_days > 0 and cohort_us - epoch_us(from_at) < $maturity_days * 86400000000 as immature
    from lead_weeks
),

-- One pass over the leads counts them per week of every kind at once (a grouping set per kind);
-- each set's rows have their own week column filled and the others NULL.
by_week as (
    select
        created_week,
        week___stage__,
        from_week,
        count(*) as leads,
        count(*) filter (where converted) as converted,
        count(*) filter (where immature) as immature
    from cohorts
    group by grouping sets ((created_week), (week___stage__), (from_week))
),

to_target as (
    select to_week, quantile_cont(days_to_target, 0.5) as median_days
    from cohorts
    where to_week is not null
    group by to_week
),

exit_weeks as (
    select s.entered_week as week, count(*) as exits
    from spells as s
    cross join as_of_us as a
    where not s.is_funnel and s.entered_week >= $first_week
        and epoch_us(s.entered_at) <= a.us - $same_point * date_diff('day', s.entered_week, cast($last_week as date)) * 86400000000
    group by s.entered_week
),

weeks as (
    select cast(unnest(generate_series(cast($first_week as date), cast($last_week as date), interval 7 day)) as date) as week
),

weekly as (
    select
        w.week,
        coalesce((select sum(b.leads) from by_week as b where b.created_week = w.week), 0) as new_leads,
        coalesce((select sum(b.leads) from by_week as b where b.week___stage__ = w.week), 0) as reached___stage__,
        coalesce((select sum(e.exits) from exit_weeks as e where e.week = w.week), 0) as exits,
        coalesce((select sum(b.leads) from by_week as b where b.from_week = w.week), 0) as from_cohort,
        coalesce((select sum(b.converted) from by_week as b where b.from_week = w.week), 0) as from_converted,
        coalesce((select sum(b.immature) from by_week as b where b.from_week = w.week), 0) as from_immature,
        (select max(m.median_days) from to_target as m where m.to_week = w.week) as median_days_to_target
    from weeks as w
)

select
    week,
    cast(new_leads as bigint) as new_leads,
    cast(reached___stage__ as bigint) as reached___stage__,
    cast(exits as bigint) as exits,
    case when from_cohort > 0 then from_converted / from_cohort end as key_rate,
    from_immature > 0 as immature,
    median_days_to_target
from weekly
order by week
