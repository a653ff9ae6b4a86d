-- Won and lost deals in money over [$start, $end) as of $as_of, per segment value: the moves that leave
-- the count (pipeline_seen) to the won stage or a $lost outcome in the period, how many and the value
-- they closed with (in the reporting currency at the period end's rates), and for the won ones the
-- median days from the deal first entering the pipeline to the win.
with closes as (
    select s.__segment__ as segment, s.moved_at, s.first_in_pipeline, s.stage = $won as won, s.worth_after as value
    from pipeline_seen as s
    where s.was_counted and not s.is_counted and (s.stage = $won or list_contains($lost, s.stage))
        and s.moved_at >= $start and s.moved_at < $end
)

select
    coalesce(cast(c.segment as varchar), '(none)') as segment,
    count(*) filter (where c.won) as won_deals,
    coalesce(sum(c.value) filter (where c.won), 0.0) as won_value,
    count(*) filter (where not c.won) as lost_deals,
    coalesce(sum(c.value) filter (where not c.won), 0.0) as lost_value,
    median((epoch_us(c.moved_at) - epoch_us(c.first_in_pipeline)) / 86400000000.0) filter (where c.won) as median_cycle_days
from closes as c
group by 1
order by 1
