-- Weekly KPIs per local ISO week (Monday start), one row per week from $first_week to $last_week, none missing.
-- The weeks are $first_week to $last_week (local Mondays, worked out by the caller in the configured
-- zone); the local weeks of each lead's instants are columns of fct_leads, computed at build.
with leads as (
    select
        l.created_at,
        l.created_week,
        l.reached___stage__,
        l.week___stage__,
        l.__first__ as first_at,
        l.__mql__ as mql_at,
        l.__mql_week__ as mql_week,
        l.__sql__ as sql_at,
        l.__sql_week__ as sql_week
    from fct_leads as l
    -- a lead whose latest week is before the first week shown counts in none of them
    where l.last_week >= $first_week
),

spells as (
    select s.is_funnel, s.entered_at, s.entered_week
    from fct_spells as s
),

-- what had happened by as_of: later instants (and their weeks) are not known yet
lead_weeks as (
    select
        case when created_at <= $as_of then created_week end as created_week,
        case when reached___stage__ <= $as_of then week___stage__ end as week___stage__,
        case when mql_at <= $as_of then mql_week end as mql_week,
        case when sql_at <= $as_of then sql_week end as sql_week,
        sql_at <= $as_of
            and ($window_days = 0 or epoch_us(sql_at) - epoch_us(mql_at) <= $window_days * 86400000000) as converted,
        $window_days > 0 and epoch_us(cast($as_of as timestamp)) - epoch_us(mql_at) < $window_days * 86400000000 as immature,
        case when sql_at <= $as_of and first_at <= $as_of then (epoch_us(sql_at) - epoch_us(first_at)) / 86400000000.0 end as days_lead_to_sql
    from leads
),

-- One pass over the leads counts them per week of every kind at once (a grouping set per kind);
-- each set's rows have their own week column filled and the others NULL.
by_week as (
    select
        created_week,
        week___stage__,
        mql_week,
        count(*) as leads,
        count(*) filter (where converted) as converted,
        count(*) filter (where immature) as immature
    from lead_weeks
    group by grouping sets ((created_week), (week___stage__), (mql_week))
),

lead_to_sql as (
    select sql_week, quantile_cont(days_lead_to_sql, 0.5) as median_days
    from lead_weeks
    where sql_week is not null
    group by sql_week
),

exit_weeks as (
    select entered_week as week, count(*) as exits
    from spells
    where not is_funnel and entered_at <= $as_of and entered_week >= $first_week
    group by entered_week
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
        coalesce((select sum(b.leads) from by_week as b where b.mql_week = w.week), 0) as mql_cohort,
        coalesce((select sum(b.converted) from by_week as b where b.mql_week = w.week), 0) as mql_converted,
        coalesce((select sum(b.immature) from by_week as b where b.mql_week = w.week), 0) as mql_immature,
        (select max(m.median_days) from lead_to_sql as m where m.sql_week = w.week) as median_days_lead_to_sql
    from weeks as w
)

select
    week,
    cast(new_leads as bigint) as new_leads,
    cast(reached___stage__ as bigint) as reached___stage__,
    cast(exits as bigint) as exits,
    case when mql_cohort > 0 then mql_converted / mql_cohort end as sql_rate,
    mql_immature > 0 as immature,
    median_days_lead_to_sql
from weekly
order by week
