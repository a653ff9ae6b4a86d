-- Won and lost deals in money over [$start, $end) as of $as_of, per segment value: the moves that leave
-- the count (pipeline_seen) to the won stage or a $lost outcome in the period, how many and the value
-- they closed with (in the reporting currency at the period end's rates), and for the won ones the
-- median days from the deal first reaching [pipeline] from_stage (__from__) to the win.
with leads as (
    select l.lead_id, l.__segment__ as segment, l.__from__ as opened_at
    from fct_leads as l
),

closes as (
    select s.lead_id, s.moved_at, s.stage = $won as won, s.worth_after as value
    from pipeline_seen as s
    where s.was_counted and not s.is_counted and (s.stage = $won or list_contains($lost, s.stage))
        and s.moved_at >= $start and s.moved_at < $end
)

select
    coalesce(cast(l.segment as varchar), '(none)') as segment,
    count(*) filter (where c.won) as won_deals,
    coalesce(sum(c.value) filter (where c.won), 0.0) as won_value,
    count(*) filter (where not c.won) as lost_deals,
    coalesce(sum(c.value) filter (where not c.won), 0.0) as lost_value,
    median((epoch_us(c.moved_at) - epoch_us(l.opened_at)) / 86400000000.0) filter (where c.won and l.opened_at is not null) as median_cycle_days
from closes as c
inner join leads as l on l.lead_id = c.lead_id
group by 1
order by 1
