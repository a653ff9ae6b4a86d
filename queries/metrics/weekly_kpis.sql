-- Weekly KPIs per local ISO week (Monday start), one row per week from the first week to as_of's week, none missing.
with leads as (
    select l.created_at, l.reached___stage__, l.__first__ as first_at, l.__mql__ as mql_at, l.__sql__ as sql_at
    from fct_leads as l
),

spells as (
    select s.is_funnel, s.entered_at, s.entered_week
    from fct_spells as s
),

settings as (
    select timezone
    from cfg_settings
),

as_of as (
    select
        case when created_at <= $as_of then created_at end as created_at,
        case when reached___stage__ <= $as_of then reached___stage__ end as reached___stage__,
        case when first_at <= $as_of then first_at end as first_at,
        case when mql_at <= $as_of then mql_at end as mql_at,
        case when sql_at <= $as_of then sql_at end as sql_at
    from leads
),

bounds as (
    select
        cast(date_trunc('week', timezone(st.timezone, timezone('UTC', cast($start as timestamp)))) as date) as start_week,
        cast(date_trunc('week', timezone(st.timezone, timezone('UTC', cast($as_of as timestamp)))) as date) as as_of_week,
        cast(date_trunc('week', timezone(st.timezone, timezone('UTC',
            least(cast($as_of as timestamp), cast($end as timestamp) - interval 1 microsecond)
        ))) as date) as last_week,
        cast(
            case
                when $weeks is null then cast(date_trunc('week', timezone(st.timezone, timezone('UTC', cast($start as timestamp)))) as date)
                else cast(date_trunc('week', timezone(st.timezone, timezone('UTC', cast($as_of as timestamp)))) as date) - 7 * ($weeks - 1)
            end as timestamp
        ) - interval 1 day as lower
    from settings as st
),

-- a local week only for a date on or after the day before the first week shown (local offsets
-- are under a day; an earlier date's week is never shown): the time-zone conversion is the costly part
lead_weeks as (
    select
        case when a.created_at >= b.lower then cast(date_trunc('week', timezone(st.timezone, timezone('UTC', a.created_at))) as date) end as created_week,
        case when a.reached___stage__ >= b.lower then cast(date_trunc('week', timezone(st.timezone, timezone('UTC', a.reached___stage__))) as date) end as week___stage__,
        case when a.mql_at >= b.lower then cast(date_trunc('week', timezone(st.timezone, timezone('UTC', a.mql_at))) as date) end as mql_week,
        case when a.sql_at >= b.lower then cast(date_trunc('week', timezone(st.timezone, timezone('UTC', a.sql_at))) as date) end as sql_week,
        a.sql_at is not null
            and ($window_days = 0 or epoch_us(a.sql_at) - epoch_us(a.mql_at) <= $window_days * 86400000000) as converted,
        $window_days > 0 and epoch_us(cast($as_of as timestamp)) - epoch_us(a.mql_at) < $window_days * 86400000000 as immature,
        (epoch_us(a.sql_at) - epoch_us(a.first_at)) / 86400000000.0 as days_lead_to_sql
    from as_of as a
    cross join settings as st
    cross join bounds as b
),

exit_weeks as (
    select entered_week as week
    from spells
    where not is_funnel and entered_at <= $as_of
),

-- $weeks null: from the period start's week; else from $weeks - 1 weeks before as_of's week
weeks as (
    select
        cast(unnest(generate_series(
            case when $weeks is null then b.start_week else b.as_of_week - 7 * ($weeks - 1) end,
            b.last_week,
            interval 7 day
        )) as date) as week
    from bounds as b
),

weekly as (
    select
        w.week,
        (select count(*) from lead_weeks as lw where lw.created_week = w.week) as new_leads,
        (select count(*) from lead_weeks as lw where lw.week___stage__ = w.week) as reached___stage__,
        (select count(*) from exit_weeks as e where e.week = w.week) as exits,
        (select count(*) from lead_weeks as lw where lw.mql_week = w.week) as mql_cohort,
        (select count(*) from lead_weeks as lw where lw.mql_week = w.week and lw.converted) as mql_converted,
        (select count(*) from lead_weeks as lw where lw.mql_week = w.week and lw.immature) as mql_immature,
        (select quantile_cont(lw.days_lead_to_sql, 0.5) from lead_weeks as lw where lw.sql_week = w.week) as median_days_lead_to_sql
    from weeks as w
)

select
    week,
    new_leads,
    reached___stage__,
    exits,
    case when mql_cohort > 0 then mql_converted / mql_cohort end as sql_rate,
    mql_immature > 0 as immature,
    median_days_lead_to_sql
from weekly
order by week
