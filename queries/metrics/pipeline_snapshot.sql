-- The open pipeline at the end of each week: per moment in $moments (the end of each local week, or
-- just after as_of for a week still running), the deals counted then (pipeline_seen: their state
-- after their last move before the moment) by stage, forecast category, segment value and currency
-- (kind 'open'), and the deals won in the week, since $week_starts' entry (kind 'won'), each
-- counted and summed in the deal's currency: each moment's rates apply in Python.
with moments as (
    select unnest($moments) as moment, unnest($week_starts) as week_start
),

held as (
    select 'open' as kind, mo.moment, s.__segment__ as segment, s.stage, s.stage_order, s.category, s.currency_after, s.amount_after
    from pipeline_seen as s
    inner join moments as mo on s.moved_at < mo.moment and s.known_until >= mo.moment
    where s.is_counted
    union all
    select 'won', mo.moment, s.__segment__, s.stage, s.stage_order, 'closed', s.currency_after, s.amount_after
    from pipeline_seen as s
    inner join moments as mo on s.moved_at >= mo.week_start and s.moved_at < mo.moment
    where s.was_counted and s.stage = $won
)

select
    h.kind,
    h.moment,
    h.stage,
    h.stage_order,
    h.category,
    coalesce(cast(h.segment as varchar), '(none)') as segment,
    h.currency_after as currency,
    count(*) as deals,
    sum(h.amount_after) as amount
from held as h
group by all
order by h.moment, h.kind, h.stage_order, segment
