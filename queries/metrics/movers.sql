-- Leads reaching MQL and SQL in as_of's week and the week before, per value of one segment column.
-- The local weeks are columns of fct_leads (computed at build in the configured zone).
with leads as (
    select l.__segment__ as segment, l.__mql__ as mql_at, l.__mql_week__ as mql_week, l.__sql__ as sql_at, l.__sql_week__ as sql_week
    from fct_leads as l
    -- only a lead with a week of last week or later can count in this week or the last
    where l.last_week >= $this_week - 7
),

weeks as (
    select
        coalesce(cast(segment as varchar), '(none)') as segment,
        case when mql_at <= $as_of then mql_week end as mql_week,
        case when sql_at <= $as_of then sql_week end as sql_week
    from leads
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
