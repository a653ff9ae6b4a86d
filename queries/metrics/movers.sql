-- Leads reaching the key rate's two stages in the review week and the week before, per value of one segment column.
-- The local weeks are columns of fct_leads (computed at build in the configured zone).
with leads as (
    select l.__segment__ as segment, l.__from__ as from_at, l.__from_week__ as from_week, l.__to__ as to_at, l.__to_week__ as to_week
    from fct_leads as l
    -- only a lead with a week of last week or later can count in this week or the last
    where l.last_week >= $this_week - 7
),

weeks as (
    select
        coalesce(cast(segment as varchar), '(none)') as segment,
        case when from_at <= $as_of then from_week end as from_week,
        case when to_at <= $as_of then to_week end as to_week
    from leads
)

select
    segment,
    count(*) filter (where from_week = $this_week) as from_this_week,
    count(*) filter (where from_week = $this_week - 7) as from_last_week,
    count(*) filter (where to_week = $this_week) as to_this_week,
    count(*) filter (where to_week = $this_week - 7) as to_last_week
from weeks
where from_week in ($this_week, $this_week - 7) or to_week in ($this_week, $this_week - 7)
group by segment
order by segment
