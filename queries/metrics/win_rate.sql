-- Win rate: of the leads that closed, the share won. A lead closes when it reaches the won stage (the
-- funnel's last) or, if it has not won by $as_of, when it first enters a lost outcome ($lost); whichever
-- it did by $as_of. Counted per segment value and local week of the close, for the closes in the period,
-- with the cohort view beside it: of the leads that entered the funnel in the period, those closed by as_of.
with leads as (
    select l.lead_id, l.__first__ as first_at, l.__won__ as won_at, l.__won_week__ as won_week, l.__segment__ as segment
    from fct_leads as l
),

losses as (
    select s.lead_id, min(s.entered_at) as lost_at, arg_min(s.entered_week, s.entered_at) as lost_week
    from fct_spells as s
    where list_contains($lost, s.stage) and s.entered_at <= $as_of
    group by s.lead_id
),

closed as (
    select
        coalesce(cast(l.segment as varchar), '(none)') as segment,
        coalesce(l.won_at <= $as_of, false) as won,
        case when l.won_at <= $as_of then l.won_at else o.lost_at end as closed_at,
        case when l.won_at <= $as_of then l.won_week else o.lost_week end as closed_week,
        coalesce(l.first_at >= $start and l.first_at < $end, false) as in_cohort
    from leads as l
    left join losses as o on o.lead_id = l.lead_id
    where l.won_at <= $as_of or o.lead_id is not null
)

select
    segment,
    case when closed_at >= $start and closed_at < $end then closed_week end as week,
    count(*) filter (where closed_at >= $start and closed_at < $end and won) as won,
    count(*) filter (where closed_at >= $start and closed_at < $end and not won) as lost,
    count(*) filter (where in_cohort and won) as cohort_won,
    count(*) filter (where in_cohort and not won) as cohort_lost
from closed
where (closed_at >= $start and closed_at < $end) or in_cohort
group by segment, week
order by segment, week
