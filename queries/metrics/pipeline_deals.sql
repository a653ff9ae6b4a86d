-- The deals behind the pipeline waterfall's bars over [$start, $end) as of $as_of: one row per deal
-- counted at the start ('start') and at the end ('end'), and per move of the period by kind, a move
-- that changes the value and leaves counting twice (its change, then its exit), as in
-- pipeline_changes; value is what the row adds to its bar (positive), in the reporting currency.
with seen as (
    select * from pipeline_seen
),

ends as (
    select
        lead_id, case when moved_at < $start and known_until >= $start then 'start' else 'end' end as change, moved_at, stage,
        amount_after as amount_before, amount_after, currency_after as currency_before, currency_after, close_after as close_before,
        close_after, worth_after as value, __attr__
    from seen
    where is_counted and (moved_at < $start and known_until >= $start or moved_at < $end and known_until >= $end)
    union all
    -- counted at both: its end row too
    select lead_id, 'end', moved_at, stage, amount_after, amount_after, currency_after, currency_after, close_after, close_after, worth_after,
           __attr__
    from seen
    where is_counted and moved_at < $start and known_until >= $end
),

in_period as (
    select *
    from seen
    where moved_at >= $start and moved_at < $end
),

moves as (
    select lead_id, case when was_in_pipeline then 'pulled_in' else 'created' end as change, moved_at, stage,
           amount_before, amount_after, currency_before, currency_after, close_before, close_after, worth_after as value, __attr__
    from in_period
    where not was_counted and is_counted
    union all
    select lead_id, case when worth_after > worth_before then 'increased' else 'decreased' end, moved_at, stage,
           amount_before, amount_after, currency_before, currency_after, close_before, close_after, abs(worth_after - worth_before),
           __attr__
    from in_period
    where was_counted and worth_after <> worth_before
    union all
    select lead_id,
           case when stage = $won then 'won' when list_contains($lost, stage) then 'lost' when in_pipeline then 'pushed_out' else 'exited' end,
           moved_at, stage, amount_before, amount_after, currency_before, currency_after, close_before, close_after, worth_after, __attr__
    from in_period
    where was_counted and not is_counted
),

everything as (
    select * from ends
    union all
    select * from moves
)

select
    e.change,
    e.lead_id,
    e.moved_at,
    e.stage,
    e.amount_before,
    e.amount_after,
    e.currency_before,
    e.currency_after,
    e.close_before,
    e.close_after,
    e.value,
    e.__attr__
from everything as e
where $change is null or e.change = $change
-- the bars in waterfall order (warehouse/metrics/pipeline.py KINDS)
order by
    case e.change
        when 'start' then 0 when 'created' then 1 when 'pulled_in' then 2 when 'increased' then 3 when 'decreased' then 4
        when 'pushed_out' then 5 when 'won' then 6 when 'lost' then 7 when 'exited' then 8 else 9
    end,
    e.moved_at,
    e.lead_id
