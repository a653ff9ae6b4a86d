-- Leads reaching MQL and SQL in as_of's week and the week before, per value of one segment column.
with leads as (
    select l.__segment__ as segment, l.__mql__ as mql_at, l.__sql__ as sql_at
    from fct_leads as l
),

settings as (
    select timezone
    from cfg_settings
),

-- a coarse UTC range first (local offsets are under a day): only leads that reached MQL or SQL
-- since 8 days before this week's Monday can be in this week or the last, and only they get the
-- (costly) local week
weeks as (
    select
        coalesce(cast(l.segment as varchar), '(none)') as segment,
        case when l.mql_at <= $as_of then cast(date_trunc('week', timezone(st.timezone, timezone('UTC', l.mql_at))) as date) end as mql_week,
        case when l.sql_at <= $as_of then cast(date_trunc('week', timezone(st.timezone, timezone('UTC', l.sql_at))) as date) end as sql_week
    from leads as l
    cross join settings as st
    where l.mql_at >= cast($this_week as timestamp) - interval 8 day or l.sql_at >= cast($this_week as timestamp) - interval 8 day
)

select
    segment,
    count(*) filter (where mql_week = $this_week) as mqls_this_week,
    count(*) filter (where mql_week = $this_week - 7) as mqls_last_week,
    count(*) filter (where sql_week = $this_week) as sqls_this_week,
    count(*) filter (where sql_week = $this_week - 7) as sqls_last_week
from weeks
where mql_week in ($this_week, $this_week - 7) or sql_week in ($this_week, $this_week - 7)
group by segment
order by segment
